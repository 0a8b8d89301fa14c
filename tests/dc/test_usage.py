"""Measured resource use per tenant, from backup_runs and recorded drill time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from dc.errors import UsageError
from dc.state import backup_runs, open_state
from dc.usage import measure_usage, record_usage


def _backup(engine, tenant: str, at: datetime, added: int, seconds: float, ok: bool = True) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(
            insert(backup_runs).values(
                system=f"{tenant}-juki",
                tenant=tenant,
                repository="file:///r",
                source="path:/x",
                started_at=at,
                finished_at=at,
                ok=ok,
                bytes_in=added * 10,
                bytes_added=added,
                seconds=seconds,
            )
        )


def test_usage_per_tenant_and_period() -> None:
    engine = open_state()
    _backup(engine, "goka", datetime(2026, 3, 31, 23, tzinfo=UTC), 1000, 10.0)
    _backup(engine, "goka", datetime(2026, 4, 2, tzinfo=UTC), 500, 5.0)
    _backup(engine, "goka", datetime(2026, 4, 3, tzinfo=UTC), 999_999, 7.0, ok=False)  # failed: stores nothing
    _backup(engine, "naka", datetime(2026, 4, 5, tzinfo=UTC), 4000, 20.0)
    _backup(engine, "naka", datetime(2026, 5, 1, tzinfo=UTC), 8000, 40.0)
    record_usage(engine, "naka", "drill_seconds", 300.0, at=datetime(2026, 4, 20, tzinfo=UTC), ref="drill-1")

    april = measure_usage(engine, "2026-04")
    # bytes: stored up to the end of April; seconds: spent within April (failed runs took time too)
    assert april["goka"].repository_bytes == 1500
    assert april["goka"].backup_seconds == 12.0
    assert april["naka"].repository_bytes == 4000
    assert (april["naka"].backup_seconds, april["naka"].drill_seconds) == (20.0, 300.0)

    everything = measure_usage(engine)
    assert everything["naka"].repository_bytes == 12000
    assert everything["naka"].backup_seconds == 60.0


def test_record_usage_refuses_unknown_kinds_and_negative_amounts() -> None:
    engine = open_state()
    with pytest.raises(UsageError, match="unknown usage kind 'repository_bytes'"):
        record_usage(engine, "goka", "repository_bytes", 1)
    with pytest.raises(UsageError, match="must not be negative"):
        record_usage(engine, "goka", "drill_seconds", -1)
    assert measure_usage(engine) == {}
