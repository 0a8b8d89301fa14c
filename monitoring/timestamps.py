"""Times read back from the control database, as aware UTC datetimes and Unix seconds.

SQLite hands back naive datetimes for ``DateTime(timezone=True)`` columns while PostgreSQL
returns aware ones; everything bcpctl stores is UTC, so naive values are UTC by contract.
"""

from __future__ import annotations

from datetime import UTC, datetime


def aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def epoch(value: datetime | str | None) -> float | None:
    """Unix seconds of a stored time (datetime or ISO 8601 text), ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value).timestamp()  # type: ignore[union-attr]
