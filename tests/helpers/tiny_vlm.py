"""Tiny randomly initialised vision-language models built from configs (no download): a LLaVA-style chat model
(CLIP vision tower + Llama), a Qwen2-VL (its own ViT, patch merger and M-RoPE decoder) and a BLIP-2 with a T5
encoder-decoder, each saved with a real processor (a word-level
tokenizer, an image processor and, for the chat model, a chat template), so the loading and scoring code runs on
the same transformers classes as the full-size models."""

from __future__ import annotations

from pathlib import Path

_TEXT = (
    "<unk> <pad> <s> </s> USER: ASSISTANT: Question: Answer: Yes No yes no Is Are Does there a an the this figure "
    "show sign say exactly one two three four shape shapes in image no red yellow green cyan blue purple circle "
    "square triangle diamond circles squares triangles diamonds large small left right of to above below Please "
    "answer or ? ."
)
WORDS = tuple(dict.fromkeys(_TEXT.split()))  # unique, in order ("no" is in the text twice)


def _tokenizer(image_token: str | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    extra = {"extra_special_tokens": {"image_token": image_token}} if image_token else {}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>", **extra
    )
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:"
    "{% endif %}"
)


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = _tokenizer("<image>")
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(cfg).eval().save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(folder)
    return folder


def build_tiny_blip2_t5(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
        T5Config,
    )

    tok = _tokenizer()
    vision = Blip2VisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    qformer = Blip2QFormerConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, encoder_hidden_size=16
    )
    text = T5Config(
        vocab_size=len(tok),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    cfg = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=4,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    Blip2ForConditionalGeneration(cfg).eval().save_pretrained(folder)
    Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok, num_query_tokens=4
    ).save_pretrained(folder)
    return folder


QWEN_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }} {% endif %}{% endfor %}<|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)


def build_tiny_qwen2_vl(folder: Path, seed: int = 0) -> Path:
    """Qwen2-VL's own classes: a 2-layer ViT with 2x2 patch merging and an M-RoPE Qwen2 decoder; its processor
    expands ``<|image_pad|>`` to one token per merged patch (4 for a 32x32 image), as the full model's does."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tok = _tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>", *QWEN_TOKENS]})
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_TOKENS}
    cfg = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},  # 2 x (1 + 1 + 2) = head dim 8
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "hidden_size": 16,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    Qwen2VLForConditionalGeneration(cfg).eval().save_pretrained(folder)
    grid = {"size": {"shortest_edge": 32 * 32, "longest_edge": 32 * 32}, "patch_size": 8, "merge_size": 2}
    Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**grid, temporal_patch_size=2),
        video_processor=Qwen2VLVideoProcessor(**grid, temporal_patch_size=2),
        tokenizer=tok,
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(folder)
    return folder
