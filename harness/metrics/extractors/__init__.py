"""The networks and caches metrics read features through: Inception, CLIP, DINOv2, preference models, local weights."""
