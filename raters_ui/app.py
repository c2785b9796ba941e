"""Streamlit entry point of the rater app: ``imagen-bench raters`` runs ``streamlit run`` on it."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import raters_ui  # noqa: F401  (installed with the project)
except ImportError:  # running from a checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raters_ui.views import main

main()
