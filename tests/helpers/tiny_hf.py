"""Tiny randomly initialised Hugging Face models built from configs (no weights exist offline).

Each builder writes the same layout as the published checkpoint it stands in for — a transformers
``save_pretrained`` folder, an HPS ``{"state_dict": ...}`` file, ImageReward's ``ImageReward.pt`` with
BLIP's parameter names plus ``med_config.json`` — so the real loaders run on them unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ["a", "red", "blue", "green", "cat", "dog", "on", "the", "table", "photo", "of", "sign", "circle", "square"]


def _bytes_to_unicode() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer(folder: Path):
    """A CLIPTokenizer with a byte-level vocabulary and no merges (every character one token)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77
    )


def tiny_dinov2_folder(folder: Path, hidden: int = 32, seed: int = 0) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    cfg = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        image_size=224,
        patch_size=14,
    )
    Dinov2Model(cfg).eval().save_pretrained(str(folder))
    return folder


def tiny_pickscore_folder(folder: Path, seed: int = 0) -> Path:
    """A CLIPModel + CLIPProcessor folder (model and processor in one, as a local copy may be)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = tiny_clip_tokenizer(folder / "_tok")
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(str(folder))
    proc = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok,
    )
    proc.save_pretrained(str(folder))
    return folder


def tiny_hps_checkpoint(folder: Path, seed: int = 0) -> tuple[str, Path]:
    """(open_clip ``local-dir:`` arch, HPS-style checkpoint ``{"state_dict": ...}``) of a tiny CLIP."""
    import open_clip

    from tests.helpers.fixtures import TINY_CLIP_CFG

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {}}))
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**TINY_CLIP_CFG)
    path = folder / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return f"local-dir:{folder}", path


def tiny_bert_tokenizer(folder: Path) -> Path:
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    return folder


def imagereward_original_state(
    width: int = 128,
    depth: int = 2,
    patch: int = 16,
    image: int = 32,
    text_hidden: int = 64,
    text_layers: int = 2,
    vocab: int = 22,
    seed: int = 0,
) -> tuple[dict, dict]:
    """(state dict in the published ImageReward.pt layout, med_config) with random weights.

    The ViT tensors are made by name and shape (timm/BLIP layout), not through our converter, so a
    wrong renaming in the loader cannot cancel out here.
    """
    from transformers import BlipTextConfig, BlipTextModel

    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.05
    n = (image // patch) ** 2 + 1
    vit = {
        "cls_token": r(1, 1, width),
        "pos_embed": r(1, n, width),
        "patch_embed.proj.weight": r(width, 3, patch, patch),
        "patch_embed.proj.bias": r(width),
        "norm.weight": 1 + r(width),
        "norm.bias": r(width),
    }
    for i in range(depth):
        vit.update(
            {
                f"blocks.{i}.norm1.weight": 1 + r(width),
                f"blocks.{i}.norm1.bias": r(width),
                f"blocks.{i}.attn.qkv.weight": r(3 * width, width),
                f"blocks.{i}.attn.qkv.bias": r(3 * width),
                f"blocks.{i}.attn.proj.weight": r(width, width),
                f"blocks.{i}.attn.proj.bias": r(width),
                f"blocks.{i}.norm2.weight": 1 + r(width),
                f"blocks.{i}.norm2.bias": r(width),
                f"blocks.{i}.mlp.fc1.weight": r(4 * width, width),
                f"blocks.{i}.mlp.fc1.bias": r(4 * width),
                f"blocks.{i}.mlp.fc2.weight": r(width, 4 * width),
                f"blocks.{i}.mlp.fc2.bias": r(width),
            }
        )
    med = {
        "architectures": ["BertModel"],
        "hidden_size": text_hidden,
        "num_hidden_layers": text_layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * text_hidden,
        "max_position_embeddings": 64,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
        "vocab_size": vocab,
        "pad_token_id": 0,
        "encoder_width": 768,
        "add_cross_attention": True,
    }
    torch.manual_seed(seed + 1)
    text = BlipTextModel(
        BlipTextConfig(
            vocab_size=vocab,
            hidden_size=text_hidden,
            encoder_hidden_size=width,
            intermediate_size=2 * text_hidden,
            num_hidden_layers=text_layers,
            num_attention_heads=2,
            max_position_embeddings=64,
            is_decoder=True,
        ),
        add_pooling_layer=False,
    )
    state = {f"blip.visual_encoder.{k}": v for k, v in vit.items()}
    state.update({f"blip.text_encoder.{k}": v for k, v in text.state_dict().items()})
    sizes = [(text_hidden, 32), (32, 16), (16, 8), (8, 4), (4, 1)]
    for idx, (i, o) in zip((0, 2, 4, 6, 7), sizes):
        state[f"mlp.layers.{idx}.weight"], state[f"mlp.layers.{idx}.bias"] = r(o, i) * 10, r(o)
    state["blip.vision_proj.weight"] = r(16, width)  # present in the published file, unused by the reward
    return state, med


def tiny_imagereward_folder(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """(folder with ImageReward.pt + med_config.json, tokenizer folder)."""
    tok = tiny_bert_tokenizer(folder / "tokenizer")
    state, med = imagereward_original_state(vocab=len(WORDS) + 5 + 2, seed=seed)
    torch.save(state, folder / "ImageReward.pt")
    (folder / "med_config.json").write_text(json.dumps(med))
    return folder, tok


def tiny_sd_folder(folder: Path, seed: int = 0) -> Path:
    """A StableDiffusionPipeline (tiny U-Net, VAE and CLIP text encoder) saved with ``save_pretrained``."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = tiny_clip_tokenizer(folder.parent / f".{folder.name}_tok")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=4,
        sample_size=16,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder


def tiny_t5_tokenizer():
    """A word-level T5-style tokenizer (pad 0, eos 1, unk 2) over :data:`WORDS`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=77
    )


def _if_unet(sample_size: int, in_channels: int, sr: bool):
    from diffusers import UNet2DConditionModel

    extra = (
        dict(
            class_embed_type="timestep",
            mid_block_scale_factor=1.414,
            time_embedding_act_fn="gelu",
            time_embedding_dim=32,
        )
        if sr
        else {}
    )
    return UNet2DConditionModel(
        sample_size=sample_size,
        layers_per_block=1,
        block_out_channels=[32, 64],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        in_channels=in_channels,
        out_channels=6,
        cross_attention_dim=32,
        encoder_hid_dim=32,
        attention_head_dim=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
        **extra,
    )


def tiny_if_folders(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """DeepFloyd IF stage I (16 px) and stage II (32 px) pipelines with tiny T5 encoders, saved as folders."""
    from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline
    from transformers import T5Config, T5EncoderModel

    tok = tiny_t5_tokenizer()
    folders = []
    for k, sr in enumerate((False, True)):
        torch.manual_seed(seed + k)
        text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_ff=32, num_layers=1, num_heads=2, d_kv=8))
        sched = DDPMScheduler(
            num_train_timesteps=1000,
            beta_schedule="squaredcos_cap_v2",
            thresholding=True,
            dynamic_thresholding_ratio=0.95,
            sample_max_value=1.0,
            prediction_type="epsilon",
            variance_type="learned_range",
        )
        common = dict(
            tokenizer=tok,
            text_encoder=text,
            scheduler=sched,
            safety_checker=None,
            feature_extractor=None,
            watermarker=None,
            requires_safety_checker=False,
        )
        if sr:
            noising = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
            pipe = IFSuperResolutionPipeline(unet=_if_unet(32, 6, True), image_noising_scheduler=noising, **common)
        else:
            pipe = IFPipeline(unet=_if_unet(16, 3, False), **common)
        folder = root / ("if_stage_II" if sr else "if_stage_I")
        pipe.save_pretrained(str(folder))
        folders.append(folder)
    return folders[0], folders[1]


def image_set(run_dir: Path, images, stage: str = "s64", prompts_per_seed: int = 1, category: str | None = None):
    """An :class:`~harness.metrics.base.ImageSet` of PIL ``images`` written as PNGs into ``run_dir``
    (``prompts_per_seed`` > 1 gives each prompt several seeds, as suites do)."""
    from harness.formats.manifest import ImageRecord
    from harness.metrics.base import ImageSet

    records = []
    for i, im in enumerate(images):
        pid, seed = f"p{i // prompts_per_seed:03d}", i % prompts_per_seed
        rel = f"images/{stage}/{pid}_{seed}.png"
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(run_dir / rel)
        records.append(
            ImageRecord(
                pid, f"a red circle number {i // prompts_per_seed}", seed, stage, im.size[0], rel, "0" * 64, category
            )
        )
    return ImageSet(run_dir, stage, records)


def world_images(n: int, start: int = 0, side: int = 64, split: str = "test"):
    """``n`` rendered world scenes (deterministic): the offline stand-in for real images."""
    from benchmarks.world.dataset import WorldSettings, sample_item
    from benchmarks.world.render import render_scene

    return [render_scene(sample_item(WorldSettings(seed=0), split, i)["scene"], side) for i in range(start, start + n)]
