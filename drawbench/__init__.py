"""DrawBench and other prompt suites: loading, grids, OCR judge, per-category scores, study export.

See drawbench/README.md. The modules are imported directly (``from drawbench.suites import
load_suite``), so that importing one does not pull in the others' dependencies.
"""
