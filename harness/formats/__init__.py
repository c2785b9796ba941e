"""The shared on-disk formats and file helpers: the one low module every part may import.

``files`` (atomic writes, image open, hashes), ``jsonio`` (versioned JSON), ``manifest`` (images
of a run), ``results`` (results.json / samples.jsonl), ``study_pairs`` (study inputs). Nothing here
imports torch or any part above, so the rater UI and the reports can use it.
"""
