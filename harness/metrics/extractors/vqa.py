"""A vision-language model asked yes/no questions: P("Yes") from the answer token's logits (VQAScore, Lin et
al. 2024; t2v_metrics), for any Hugging Face image-text-to-text model in a local folder or the HF cache.

Two families, told apart by the config (``is_encoder_decoder``):

* **seq2seq** (BLIP-2 / InstructBLIP with Flan-T5, the CLIP-FlanT5 design): the question goes to the encoder
  with the image, the decoder starts from its start token, and the first decoder step's distribution is read;
* **chat** (Qwen2-VL, Qwen2.5-VL, LLaVA, ...): the processor's chat template wraps an image and the question
  as a user turn with the generation prompt, and the next-token distribution after it is read.

P("Yes") is the softmax probability of the first token of ``"Yes"`` over the whole vocabulary (t2v_metrics'
VQAScore); ``p_no`` the same for ``"No"``. The question template (``"{question}"`` filled with the prompt or a
question) and the token ids are recorded in :attr:`VqaModel.identity` with the weights' sha256, so a changed
template or model is a different number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.errors import UserError
from harness.metrics.extractors.hf_local import resolve_model_folder, weight_files

#: VQAScore's question for a whole prompt (Lin et al. 2024, t2v_metrics' default).
VQASCORE_TEMPLATE = 'Does this figure show "{prompt}"? Please answer yes or no.'
#: The seq2seq models' prompt around a question (BLIP-2's VQA format).
SEQ2SEQ_FORMAT = "Question: {question} Answer:"


@dataclass
class VqaModel:
    model: Any
    processor: Any
    seq2seq: bool
    yes_id: int
    no_id: int
    device: str = "cpu"
    identity: dict[str, Any] = field(default_factory=dict)

    def _inputs(self, images: Sequence[Image.Image], questions: Sequence[str]) -> Any:
        if self.seq2seq:
            texts = [SEQ2SEQ_FORMAT.format(question=q) for q in questions]
        else:
            texts = [
                self.processor.apply_chat_template(
                    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
                    add_generation_prompt=True,
                )
                for q in questions
            ]
        rgb = [im.convert("RGB") for im in images]
        return self.processor(text=texts, images=rgb, return_tensors="pt", padding=True).to(self.device)

    def yes_no(self, images: Sequence[Image.Image], questions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P("Yes"), P("No")) per (image, question) pair, from one forward pass of the batch."""
        import torch

        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images for {len(questions)} questions")
        inputs = self._inputs(images, questions)
        with torch.inference_mode():
            if self.seq2seq:
                start = self.model.config.text_config.decoder_start_token_id
                dec = torch.full((len(questions), 1), int(start), dtype=torch.long, device=self.device)
                logits = self.model(**inputs, decoder_input_ids=dec).logits[:, 0]
            else:
                out = self.model(**inputs).logits
                mask = inputs["attention_mask"]
                # the last real token of each row, whichever side the processor padded
                last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)
                logits = out[torch.arange(out.shape[0]), last]
            probs = logits.float().softmax(dim=-1)
        return probs[:, self.yes_id].cpu().numpy(), probs[:, self.no_id].cpu().numpy()


def _first_token(tokenizer: Any, word: str, folder: Path) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UserError(f"VQA model {folder}: its tokenizer turns {word!r} into no token")
    return int(ids[0])


def load_vqa(model: str, config_key: str, device: str = "cpu", cache_dir: str | Path | None = None) -> VqaModel:
    """The model and processor in ``model`` (a folder or a cached repo id); a folder without weights, a
    model that is not image-text-to-text, or a processor that does not load is one line naming the folder."""
    import json

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from imagen.hashing import files_sha256

    folder = resolve_model_folder(model, "VQA model", config_key)
    weights = weight_files(folder, "VQA model")
    config = json.loads((folder / "config.json").read_text())
    try:
        processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        net = AutoModelForImageTextToText.from_pretrained(str(folder), local_files_only=True).to(device).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise UserError(f"cannot load a VQA model from {folder}: {' '.join(str(err).split())[:300]}") from None
    text_cfg = getattr(net.config, "text_config", net.config)
    seq2seq = bool(getattr(net.config, "is_encoder_decoder", False) or getattr(text_cfg, "is_encoder_decoder", False))
    yes_id, no_id = (_first_token(processor.tokenizer, w, folder) for w in ("Yes", "No"))
    identity = {
        "model": model,
        "path": str(folder),
        "model_type": config.get("model_type"),
        "family": "seq2seq" if seq2seq else "chat",
        "answer_tokens": {"Yes": yes_id, "No": no_id},
        "seq2seq_format": SEQ2SEQ_FORMAT if seq2seq else None,
        "config_sha256": files_sha256([folder / "config.json"], cache_dir),
        "weights_sha256": files_sha256(weights, cache_dir),
    }
    return VqaModel(net, processor, seq2seq, yes_id, no_id, device, identity)


def shared_vqa(env: Any) -> VqaModel:
    """The ``vqa.model`` of this evaluation, loaded once for every metric that asks it (VQAScore, question
    graphs); a missing model names what to fetch and the key to set."""
    model = env.option("vqa", "model")
    if not model:
        raise UserError("no VQA model: pass vqa.model=<folder or HF repo id in the cache>")
    return env.shared(("vqa", str(model)), lambda: load_vqa(str(model), "vqa.model", env.device, env.cache_dir))


class VqaAnswerer:
    """Question-graph answers from a VQA model: P("yes") renormalised over {"Yes", "No"} (TIFA and DSG take
    the model's yes/no answer; a threshold of 0.5 on this is that argmax), all of an image's questions in one
    batch. Registered as the ``vqa`` answerer; the model is ``vqa.model``."""

    name = "vqa"
    version = "vqa-answerer/1"

    def __init__(self, env: Any) -> None:
        self.env = env
        self.vqa: VqaModel | None = None

    @classmethod
    def from_options(cls, env: Any) -> VqaAnswerer:
        return cls(env)

    def prepare(self) -> None:
        self.vqa = shared_vqa(self.env)

    def identity(self) -> dict[str, Any]:
        return {"answerer": self.name, "version": self.version, **(self.vqa.identity if self.vqa else {})}

    def answer(self, image: Image.Image, questions: Any) -> list[float]:
        if self.vqa is None:
            self.prepare()
        assert self.vqa is not None
        texts = [q.text for q in questions.questions]
        yes, no = self.vqa.yes_no([image] * len(texts), texts)
        return [float(y / (y + n)) if y + n > 0 else 0.0 for y, n in zip(yes, no)]
