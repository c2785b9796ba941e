"""Automatic metrics: the contract (``base``, ``registry``), the metric classes (this folder), the networks
and caches they read features through (``extractors/``) and their pure maths (``maths/``)."""
