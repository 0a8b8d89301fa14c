"""Durations as operators write them in configuration: ``90s``, ``15m``, ``4h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re

from dc.errors import N_, Message

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str | int | float) -> int:
    """Return the duration in whole seconds; a bare number means seconds."""
    if isinstance(text, bool):
        raise ValueError(Message(N_("a duration must be a number of seconds or text like 15m, 4h, 7d")))
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(Message(N_("a duration cannot be negative")))
        return int(text)
    compact = text.strip().replace(" ", "")
    parts = [] if compact.isdigit() else _PART.findall(compact)
    # digits beyond Python's int() limit would raise its own English ValueError
    if not (compact.isdigit() or parts) or "".join(n + u for n, u in parts) not in ("", compact) or len(compact) > 4000:
        raise ValueError(Message(N_("'{text}' is not a duration (use e.g. 30s, 15m, 4h, 7d, 1h30m)"), text=text))
    if compact.isdigit():
        return int(compact)
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """A short human form: ``4h``, ``1h30m``, ``45s``, ``2d3h``."""
    remaining = round(seconds)
    if remaining == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            count, remaining = divmod(remaining, size)
            out.append(f"{count}{unit}")
    return "".join(out)
