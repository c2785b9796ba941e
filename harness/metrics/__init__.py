"""Automatic metrics: FID/KID on the TF-FID Inception network, CLIP score, intervals."""
