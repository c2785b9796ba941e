"""What the browser reports with a submission, checked before anything of it is stored.

The rater page's client component (:mod:`raters_ui.client`) sends, with the form, the browser's
own time on the item (from the item first appearing in this browser to the click, across
reloads) and the image-open events of the enlarged view. That payload comes from the rater's
browser, so it is treated as hostile input: anything malformed is dropped (the rating itself is
still recorded), numbers must be finite and in range, lists are capped. It is stored beside the
server's own measure and never used alone for a flag (:mod:`raters_ui.quality` uses server time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_EVENTS = 200  # per item; more than anyone opens, so a flooding client is cut off
MAX_SECONDS = 7 * 24 * 3600.0  # an item left open for a week is still a number; beyond is nonsense
SETS = ("A", "B")


@dataclass(frozen=True)
class ImageOpen:
    """One opening of the enlarged view: set as shown, image (1-based; None = the whole set),
    seconds after the item appeared, and how long it stayed open (None: still open at submit)."""

    set_shown: str
    image: int | None
    at_seconds: float
    open_seconds: float | None


@dataclass(frozen=True)
class ClientReport:
    client_seconds: float | None = None
    opens: list[ImageOpen] = field(default_factory=list)


def _seconds(value: Any, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    out = float(value)
    if not math.isfinite(out) or not 0.0 <= out <= MAX_SECONDS:
        raise ValueError("out of range")
    return round(out, 3)


def _open(event: Any, n_images: int) -> ImageOpen:
    if not isinstance(event, dict):
        raise TypeError("not an object")
    set_shown, image = event.get("set"), event.get("image")
    if set_shown not in SETS:
        raise ValueError("bad set")
    if image is not None and (isinstance(image, bool) or not isinstance(image, int) or not 1 <= image <= n_images):
        raise ValueError("bad image")
    return ImageOpen(set_shown, image, _seconds(event.get("at")), _seconds(event.get("seconds"), nullable=True))


def parse_client(payload: Any, key: str, n_images: int) -> ClientReport:
    """The checked report of ``payload`` (the component's ``telemetry`` state) for the screen
    ``key``; an empty report when it is missing, for another screen, or malformed."""
    if not isinstance(payload, dict) or payload.get("key") != key:
        return ClientReport()
    try:
        seconds = _seconds(payload.get("client_seconds"), nullable=True)
        events = payload.get("events") or []
        if not isinstance(events, list):
            raise TypeError("events is not a list")
        opens = [_open(e, n_images) for e in events[:MAX_EVENTS]]
    except (TypeError, ValueError):
        return ClientReport()
    return ClientReport(seconds, opens)
