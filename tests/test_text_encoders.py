"""Text encoders: tiny random T5/CLIP/BERT from configs, local-folder and HF-cache loading, the
real MiniLM, the embedding cache, missing-weight errors and meta-device parameter counts."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from harness.errors import MissingWeightsError, UserError
from imagen.build import build_text_encoder
from imagen.text import CachedTextEncoder, EmbeddingCache, FrozenTextEncoder, TextEncoderConfig
from imagen.text.encoders import text_encoder_parameter_count

CONF = Path(__file__).resolve().parents[1] / "conf" / "text_encoder"


def cfg(preset: str, **over) -> TextEncoderConfig:
    d = OmegaConf.to_container(OmegaConf.load(CONF / f"{preset}.yaml"))
    d.update(over)
    return TextEncoderConfig.from_dict(d)


@pytest.mark.parametrize("name", ["tiny_t5", "tiny_clip", "tiny_bert"])
def test_tiny_random_encoders_give_masked_token_embeddings(name):
    enc = FrozenTextEncoder(cfg(name))
    emb, mask = enc.encode(["a red square", "a much longer caption about a blue circle on grass"])
    assert emb.shape == (2, enc.max_length, enc.dim) and mask.dtype == torch.bool
    assert mask[1].sum() > mask[0].sum() > 0
    assert (emb[~mask] == 0).all()  # padding is zeroed
    mean = (emb * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert not torch.allclose(mean[0], mean[1], atol=1e-3)  # different texts, different embeddings
    assert all(not p.requires_grad for p in enc.model.parameters())
    again = FrozenTextEncoder(cfg(name))
    assert again.identity == enc.identity  # seeded random init has a stable identity


def test_batching_does_not_change_embeddings():
    c = cfg("tiny_t5")
    one = FrozenTextEncoder(c).encode(["x", "a longer one", "mid size"])[0]
    four = FrozenTextEncoder(TextEncoderConfig(**{**c.__dict__, "batch_size": 4})).encode(
        ["x", "a longer one", "mid size"]
    )[0]
    torch.testing.assert_close(one, four, rtol=1e-5, atol=1e-6)


def test_t5_loads_from_a_local_folder_and_from_the_hf_cache(tmp_path, monkeypatch):
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    c = cfg("tiny_t5")
    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(**{k: v for k, v in c.arch.items() if k != "model_type"})).eval()
    folder = tmp_path / "tiny-t5"
    model.save_pretrained(folder)
    ByT5Tokenizer().save_pretrained(folder)
    enc = FrozenTextEncoder(cfg("tiny_t5", random_init=False, path=str(folder), tokenizer=None))
    emb, _ = enc.encode(["hello"])
    ids = ByT5Tokenizer()(["hello"], return_tensors="pt")
    with torch.no_grad():
        ref = model(**ids).last_hidden_state[0]
    torch.testing.assert_close(emb[0, : ref.shape[0]], ref)
    # the same files as a Hugging Face cache entry (models--org--name/snapshots/<rev>)
    import huggingface_hub.constants as hc

    snap = tmp_path / "hub" / "models--acme--tiny-t5" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (tmp_path / "hub" / "models--acme--tiny-t5" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny-t5" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = FrozenTextEncoder(cfg("tiny_t5", random_init=False, name="acme/tiny-t5", path=None, tokenizer=None))
    torch.testing.assert_close(cached.encode(["hello"])[0], emb)
    assert cached.weights_sha256 == enc.weights_sha256


def test_clip_loads_an_open_clip_checkpoint_file(tmp_path):
    import open_clip

    c = cfg("tiny_clip")
    conf_dir = tmp_path / "clip_cfg"
    conf_dir.mkdir()
    (conf_dir / "tiny-test-clip.json").write_text(json.dumps(c.arch))
    open_clip.add_model_config(conf_dir)
    random_enc = FrozenTextEncoder(c)
    ckpt = tmp_path / "tiny.bin"
    from open_clip.model import CLIP

    torch.manual_seed(0)
    full = CLIP(**c.arch)
    torch.save(full.state_dict(), ckpt)
    loaded = FrozenTextEncoder(cfg("tiny_clip", random_init=False, name="tiny-test-clip", path=str(ckpt)))
    torch.testing.assert_close(loaded.encode(["a cat"])[0], random_enc.encode(["a cat"])[0])


def test_real_minilm_is_a_frozen_pretrained_encoder():
    enc = FrozenTextEncoder(cfg("minilm_l6"))
    emb, mask = enc.encode(["a red square", "a crimson square", "a blue circle"])
    pooled = torch.nn.functional.normalize((emb * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
    sim = pooled @ pooled.T
    assert sim[0, 1] > sim[0, 2]  # a real LM: red~crimson closer than red~blue circle


def test_missing_weights_name_what_to_download(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"huggingface-cli download google/t5-v1_1-xxl.*text_encoder.path"):
        FrozenTextEncoder(cfg("t5_v1_1_xxl"))
    with pytest.raises(MissingWeightsError, match="text_encoder.path"):
        FrozenTextEncoder(cfg("t5_v1_1_small", path=str(tmp_path / "nowhere")))
    with pytest.raises(MissingWeightsError, match="open_clip checkpoint"):
        FrozenTextEncoder(cfg("clip_vit_l14"))
    with pytest.raises(UserError, match="unknown text_encoder keys"):
        TextEncoderConfig.from_dict({"kind": "t5", "name": "x", "dim": 1, "colour": "red"})


def test_embedding_cache_hits_and_bit_identity(tmp_path):
    enc = FrozenTextEncoder(cfg("tiny_t5"))
    cached = CachedTextEncoder(enc, EmbeddingCache(enc.identity, enc.max_length, cache_dir=tmp_path))
    texts = ["one", "two two", "one"]
    first = cached.encode(texts)
    assert (cached.hits, cached.misses) == (0, 2)
    second_encoder = CachedTextEncoder(enc, EmbeddingCache(enc.identity, enc.max_length, cache_dir=tmp_path))
    second = second_encoder.encode(texts)
    assert (second_encoder.hits, second_encoder.misses) == (2, 0)
    fresh = enc.encode(texts)
    for a, b, c in zip(first, second, fresh):
        assert torch.equal(a, b) and torch.equal(a, c)
    # another encoder identity or length never reads these entries
    other = EmbeddingCache("t5:other@ff", enc.max_length, cache_dir=tmp_path)
    assert other.get("one") is None
    # a corrupt entry is recomputed, not trusted
    path = cached.cache._path("one")
    path.write_bytes(b"garbage")
    third = CachedTextEncoder(enc, EmbeddingCache(enc.identity, enc.max_length, cache_dir=tmp_path))
    assert torch.equal(third.encode(["one"])[0], fresh[0][:1]) and third.misses == 1


def test_build_text_encoder_uses_the_cache_dir(tmp_path):
    te = OmegaConf.load(CONF / "tiny_bert.yaml")
    enc = build_text_encoder(te, cache_dir=tmp_path)
    enc.encode(["hello world"])
    assert list((tmp_path / "text-emb").rglob("*.safetensors"))


def test_meta_parameter_counts_at_paper_scale():
    assert text_encoder_parameter_count(cfg("t5_v1_1_xxl")) == pytest.approx(4.6e9, rel=0.10)
    assert text_encoder_parameter_count(cfg("t5_v1_1_small")) == pytest.approx(35e6, rel=0.15)
    assert text_encoder_parameter_count(cfg("clip_vit_l14")) == pytest.approx(123.65e6, rel=0.01)
    assert text_encoder_parameter_count(cfg("bert_base")) == pytest.approx(109e6, rel=0.05)
