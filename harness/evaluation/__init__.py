"""Evaluation: one pipeline for every benchmark, and the scorer that turns metric values into the typed results table."""
