"""The app's colours, chosen to pass WCAG 2.1 AA, and the contrast arithmetic that checks them.

AA asks for a contrast ratio of at least 4.5:1 for normal text, 3:1 for large text (24 px, or
18.66 px bold) and 3:1 for the parts of controls and graphics one needs to see (1.4.11).
Streamlit's own default primary colour (#FF4B4B) carries white button text at 3.6:1 and its
captions are 60% text colour (about 4.0:1), so both are replaced here: the theme by command-line
options of ``streamlit run`` (:func:`streamlit_options`), captions by the page CSS.
``tests/test_raters_quality.py`` pins the ratios below; the browser test measures what the page
really draws.
"""

from __future__ import annotations

TEXT = "#1f2937"  # body text on white: 14.7:1
MUTED = "#4b5563"  # captions and hints on white: 7.6:1
PRIMARY = "#1d4ed8"  # buttons (white text on it), links, selected radios, focus ring: 6.7:1
BORDER = "#6b7280"  # the set panels' outline on white: 4.8:1 (>= 3:1 for graphics)
CURRENT = "#eff6ff"  # background of the highlighted question (text on it: 13.5:1)
BACKGROUND = "#ffffff"
SECONDARY_BG = "#f3f4f6"
VIEWER_BG = "#111827"  # the enlarged view's backdrop and bar
VIEWER_TEXT = "#f9fafb"  # its text: 16.9:1
CHART = {"a": "#1d4ed8", "tie": "#6b7280", "b": "#b45309"}  # bars on white: 6.7, 4.8, 5.0:1
CHART_RULE = "#111827"  # interval lines


def _channel(c: float) -> float:
    c /= 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def luminance(color: str | tuple[float, float, float]) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour ("#rrggbb" or an (r, g, b) tuple, 0-255)."""
    r, g, b = rgb(color) if isinstance(color, str) else color
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(fg: str | tuple, bg: str | tuple) -> float:
    """WCAG contrast ratio (1-21) of two opaque colours."""
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def streamlit_options() -> list[str]:
    """``streamlit run`` options that set the theme (a light base with the colours above)."""
    return [
        "--theme.base",
        "light",
        "--theme.primaryColor",
        PRIMARY,
        "--theme.textColor",
        TEXT,
        "--theme.backgroundColor",
        BACKGROUND,
        "--theme.secondaryBackgroundColor",
        SECONDARY_BG,
        "--theme.linkColor",
        PRIMARY,
    ]
