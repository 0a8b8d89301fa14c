"""The one clock: timezone-aware UTC.

Apart from :mod:`dc.state` so that code which only needs the time (the replication sync,
read on every ``bcpctl replicate`` start) does not import SQLAlchemy with it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
