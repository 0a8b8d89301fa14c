"""Times read back from the control database as Unix seconds, for the metrics.

Every time column is :class:`dc.state.UtcDateTime`, which reads back timezone-aware on
SQLite and PostgreSQL alike, so nothing here guesses a zone.
"""

from __future__ import annotations

from datetime import datetime


def epoch(value: datetime | None) -> float | None:
    """Unix seconds of a stored time; ``None`` stays ``None``."""
    return value.timestamp() if value is not None else None
