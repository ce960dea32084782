"""Sizes in bytes as people read them, in one convention for every message: kB, MB and GB are
powers of 1000 (as disks and downloads count them), with one decimal."""

from __future__ import annotations

import math

_UNITS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def human_size(size: int, *, round_up: bool = False, whole: bool = False) -> str:
    """`size` bytes as "173.4 MB", or "N bytes" under 1 kB.

    `round_up`: a size just over a limit never reads as equal to it ("20.1 MB", not "20.0 MB").
    `whole`: a round number without its ".0" ("20 MB"), as a limit is stated.
    """
    for unit, factor in _UNITS:
        if size >= factor:
            value = math.ceil(size * 10 / factor) / 10 if round_up else size / factor
            text = f"{value:.1f}"
            if whole and text.endswith(".0"):
                text = text[:-2]
            return f"{text} {unit}"
    return f"{size} bytes"
