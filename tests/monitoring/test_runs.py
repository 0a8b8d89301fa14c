"""Job claims: one run per job at a time, stale claims taken over, counters that never go back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from dc.state import open_state
from monitoring.runs import RunLedger, job_claims, job_runs, prune_runs, read_stats


def _runs(engine, job_id: str) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(job_runs).where(job_runs.c.job_id == job_id).order_by(job_runs.c.started_at)).all()


def test_a_held_claim_makes_a_second_run_skip(control_url: str) -> None:
    engine = open_state(control_url)
    a, b = RunLedger(engine, "a", 30), RunLedger(engine, "b", 30)
    claim = a.claim("backup:goka-juki", "backup")
    assert claim is not None
    assert b.claim("backup:goka-juki", "backup") is None
    assert a.claim("backup:goka-juki", "backup") is None  # not even the same holder twice at once
    a.finish(claim, "ok")
    assert b.claim("backup:goka-juki", "backup") is not None
    statuses = [row.status for row in _runs(engine, "backup:goka-juki")]
    assert sorted(statuses) == ["ok", "running", "skipped", "skipped"]


def test_a_stale_claim_is_taken_over_and_its_run_recorded_abandoned(control_url: str) -> None:
    engine = open_state(control_url)
    dead, alive = RunLedger(engine, "dead", 1.0), RunLedger(engine, "alive", 1.0)
    old = dead.claim("check:primary", "check")
    assert old is not None
    time.sleep(0.5)
    dead.heartbeat()  # the last sign of life
    with engine.connect() as conn:
        last_beat = conn.execute(select(job_claims.c.heartbeat_at)).scalar_one()
    assert alive.claim("check:primary", "check") is None  # still fresh
    time.sleep(1.2)
    new = alive.claim("check:primary", "check")
    assert new is not None
    rows = {row.run_id: row for row in _runs(engine, "check:primary")}
    assert rows[old.run_id].status == "abandoned"
    # its honest end is the last heartbeat, which is before the new run started
    assert rows[old.run_id].finished_at == last_beat <= rows[new.run_id].started_at
    # the dead holder, should it come back, cannot finish over the new run's claim
    dead.finish(old, "ok")
    with engine.connect() as conn:
        assert conn.execute(select(job_claims.c.run_id)).scalar_one() == new.run_id
    assert {row.run_id: row.status for row in _runs(engine, "check:primary")}[old.run_id] == "abandoned"
    assert read_stats(engine) == []  # an abandoned run is neither a success nor a failure


def test_heartbeats_keep_a_long_run_claimed(control_url: str) -> None:
    engine = open_state(control_url)
    worker, other = RunLedger(engine, "worker", 1.0), RunLedger(engine, "other", 1.0)
    claim = worker.claim("backup:x", "backup")
    assert claim is not None
    for _ in range(4):
        time.sleep(0.4)
        assert worker.heartbeat() == 1
        assert other.claim("backup:x", "backup") is None
    assert other.sweep_stale() == 0


def test_sweep_releases_only_stale_claims(control_url: str) -> None:
    engine = open_state(control_url)
    ledger = RunLedger(engine, "x", 5.0)
    stale, fresh = ledger.claim("a", "backup"), ledger.claim("b", "backup")
    assert stale and fresh
    with engine.begin() as conn:
        conn.execute(
            update(job_claims)
            .where(job_claims.c.job_id == "a")
            .values(heartbeat_at=stale.started_at - timedelta(seconds=60))
        )
    assert RunLedger(engine, "leader", 5.0).sweep_stale() == 1
    assert [row.status for row in _runs(engine, "a")] == ["abandoned"]
    assert [row.status for row in _runs(engine, "b")] == ["running"]


def test_racing_claims_have_exactly_one_winner(control_url: str) -> None:
    engine = open_state(control_url)
    RunLedger(engine, "setup", 30)  # tables exist before the race
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(name: str) -> None:
        ledger = RunLedger(engine, name, 30)
        barrier.wait()
        if ledger.claim("backup:race", "backup") is not None:
            winners.append(name)

    threads = [threading.Thread(target=race, args=(f"p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    statuses = sorted(row.status for row in _runs(engine, "backup:race"))
    assert statuses == ["running"] + ["skipped"] * 7


def test_counters_survive_pruning(control_url: str) -> None:
    engine = open_state(control_url)
    ledger = RunLedger(engine, "x", 30)
    for status in ("failed", "failed", "ok", "failed"):
        claim = ledger.claim("health", "health")
        assert claim is not None
        ledger.finish(claim, status, "boom" if status == "failed" else None)
    ledger.count_missed("health")
    (stats,) = read_stats(engine)
    assert (stats.runs, stats.failures, stats.missed, stats.consecutive_failures) == (4, 3, 1, 1)
    assert stats.last_success_at is not None
    assert prune_runs(engine, timedelta(seconds=-1)) == 4
    assert _runs(engine, "health") == []
    (after,) = read_stats(engine)
    assert (after.runs, after.failures, after.missed) == (4, 3, 1)
