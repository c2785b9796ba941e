"""The procedural world: compositional scenes with exactly known ground truth, and its judges.

Scenes of 1–4 flat shapes (4 shapes, 6 well-separated colours, 2 sizes, a 3×3 grid) or a sign
with a short upper-case word, on a plain light background, rendered deterministically from a seed
and captioned by a grammar whose categories mirror DrawBench (single, colors, counting,
positional, text, rare_words, misspellings). Every image is stored with its scene and the
machine-checkable spec of its caption, so a parser (``parser.py``) and a judge (``judge.py``) can
score any image exactly against any caption of the world.

Modules, low to high: ``scenes`` (vocabulary, spec and scene dataclasses, sampling), ``grammar``
(captions), ``render`` (PIL drawing), ``parser`` (image → objects and signs), ``judge`` (spec vs
parse), ``suite`` (the prompt suite), ``dataset`` (train/test splits on disk), ``command``
(``imagen-bench data world``), ``tiny_clip`` (the shipped open_clip model trained on the world).
"""
