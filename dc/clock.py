"""The one clock: timezone-aware UTC, and JST for what people read.

Apart from :mod:`dc.state` so that code which only needs the time (the replication sync,
read on every ``bcpctl replicate`` start) does not import SQLAlchemy with it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

#: the municipalities' clock (Japan has no daylight saving time)
JST = timezone(timedelta(hours=9), "JST")


def utcnow() -> datetime:
    return datetime.now(UTC)


def jst_text(when: datetime) -> str:
    """``when`` as a person reads it: ``YYYY-MM-DD HH:MM JST`` (machines get ISO 8601 with its offset)."""
    return when.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
