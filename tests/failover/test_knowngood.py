"""The last known good snapshot the ransomware signals recorded, as the point-in-time drill reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from dc.errors import UsageError
from dc.state import backup_runs, open_state
from failover.knowngood import known_good, restore_point

T0 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def _run(state: Engine, system: str, snapshot: str, at: datetime, **extra: object) -> None:
    with state.begin() as conn:
        conn.execute(
            insert(backup_runs).values(
                system=system, repository="file:///r", source="postgres:x", snapshot_id=snapshot,
                started_at=at, finished_at=at + timedelta(minutes=2), ok=True, **extra,
            )
        )  # fmt: skip


def test_the_newest_anomaly_names_its_known_good_snapshot_and_the_moment_that_picks_it() -> None:
    state = open_state(None)
    _run(state, "goka-juki", "a" * 64, T0)
    _run(state, "goka-juki", "b" * 64, T0 + timedelta(hours=1))
    _run(state, "goka-juki", "c" * 64, T0 + timedelta(hours=2), anomaly="compressibility 0.99 > 0.40",
         last_known_good="b" * 64)  # fmt: skip
    _run(state, "naka-juki", "d" * 64, T0 + timedelta(hours=3), anomaly="x", last_known_good="e" * 64)
    _run(state, "naka-kaigo", "f" * 64, T0)  # never anomalous
    goods = {g.system: g for g in known_good(state, ["goka-juki", "naka-juki", "naka-kaigo"])}
    assert set(goods) == {"goka-juki", "naka-juki"}
    goka = goods["goka-juki"]
    # just after the good backup finished: its snapshot is the newest before it, the bad one is not
    assert goka.snapshot_id == "b" * 64 and goka.restore_before == T0 + timedelta(hours=1, minutes=2)
    assert T0 + timedelta(hours=1) < goka.restore_before < T0 + timedelta(hours=2)
    assert "bbbbbbbb" in goka.describe() and "compressibility" in goka.describe()
    # the good backup's row is gone (pruned history): the anomalous backup's start still comes after it
    assert goods["naka-juki"].restore_before == T0 + timedelta(hours=3)
    assert restore_point(list(goods.values()), ["goka-juki", "naka-juki"]) == goka.restore_before
    with pytest.raises(UsageError, match=r"no anomaly .* naka-kaigo: give --before"):
        restore_point(known_good(state, ["naka-kaigo"]), ["naka-kaigo"])
