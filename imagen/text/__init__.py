"""Frozen text encoders (T5, CLIP text tower, BERT family) and the offline embedding cache."""

from imagen.text.cache import CachedTextEncoder, EmbeddingCache
from imagen.text.encoders import FrozenTextEncoder, TextEncoderConfig, text_encoder_parameter_count

__all__ = [
    "CachedTextEncoder",
    "EmbeddingCache",
    "FrozenTextEncoder",
    "TextEncoderConfig",
    "text_encoder_parameter_count",
]
