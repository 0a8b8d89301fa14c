"""Scheduler failover: two ``serve`` processes on one control database, the leader SIGKILLed.

The standby must take over within a bounded time, and no job may ever run twice at once. Two
independent witnesses check the second point: the run records (each run of a job ends before
the next starts; a killed run ends at its last heartbeat), and the kernel — every backup's
source command takes a non-blocking ``flock`` on a per-system lock file, so an overlapping
run of the same system would fail its backup and show up in ``backup_runs``.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from dc.state import backup_runs
from monitoring.lease import scheduler_terms
from monitoring.runs import job_runs
from tests.monitoring.conftest import build_lab
from tests.monitoring.serving import ServeProcess

SYSTEMS = ("goka-juki", "naka-juki", "naka-kaigo")
LEASE_TTL = 3.0
TICK = 0.2


def _lab(root: Path, control_url: str):  # type: ignore[no-untyped-def]
    assert shutil.which("flock"), "flock (util-linux) is needed as the overlap witness"
    locks = root / "locks"
    locks.mkdir(parents=True)
    systems = {
        name: {
            "tenant": name.split("-")[0],
            "schedule": "2s",
            "source": {"kind": "command", "command": f"flock -n {locks / name}.lock sh -c 'sleep 0.4; echo {name}'"},
        }
        for name in SYSTEMS
    }
    return build_lab(root / "lab", systems, control_db=control_url)


def _wait_running_by(engine, holder_prefix: str, timeout: float = 15) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(
                select(job_runs.c.run_id).where(
                    job_runs.c.status == "running", job_runs.c.holder.startswith(holder_prefix)
                )
            ).first()
        if row:
            return row.run_id
        time.sleep(0.02)
    raise AssertionError("the leader never ran a job")


def _leader_and_standby(one: ServeProcess, two: ServeProcess) -> tuple[ServeProcess, ServeProcess]:
    deadline, roles = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        roles = [str((proc.readyz() or {}).get("role")) for proc in (one, two)]
        if sorted(roles) == ["leader", "standby"]:
            return (one, two) if roles[0] == "leader" else (two, one)
        assert roles != ["leader", "leader"], "two leaders at once"
        time.sleep(0.05)
    raise AssertionError(f"no single leader: {roles}")


@pytest.mark.slow
def test_standby_takes_over_when_the_leader_is_killed(tmp_path: Path, control_url: str) -> None:
    lab = _lab(tmp_path, control_url)
    args = ("--lease-ttl", str(LEASE_TTL), "--tick", str(TICK))
    with (
        ServeProcess(lab.config_path, tmp_path / "one.log", *args) as one,
        ServeProcess(lab.config_path, tmp_path / "two.log", *args) as two,
    ):
        # Started together: exactly one of them must lead.
        a, b = _leader_and_standby(one, two)
        time.sleep(3)  # a few runs under the first leader
        assert b.readyz()["role"] == "standby", "two leaders at once"
        engine = create_engine(control_url)
        holder_a = a.readyz()["holder"]
        killed_run = _wait_running_by(engine, holder_a)
        a.proc.kill()  # SIGKILL mid-run: no cleanup, no lease release
        killed_at = time.monotonic()
        a.proc.wait()
        took_over_at = b.wait_role("leader", timeout=LEASE_TTL + 10)
        takeover = took_over_at - killed_at
        time.sleep(LEASE_TTL + 4)  # the killed run's claim goes stale; b runs every job again
        code, summary = b.stop()
    assert code == 0 and summary["led"] is True

    # Bounded takeover: PostgreSQL frees the lock with the session, SQLite after the lease TTL.
    bound = TICK + 2.0 if control_url.startswith("postgresql") else LEASE_TTL + TICK + 2.0
    assert takeover < bound, f"takeover took {takeover:.2f}s"

    with engine.connect() as conn:
        runs = conn.execute(select(job_runs).order_by(job_runs.c.started_at)).all()
        backups = conn.execute(select(backup_runs)).all()
        terms = conn.execute(select(scheduler_terms).order_by(scheduler_terms.c.id)).all()
    holder_b = summary["holder"]
    by_id = {r.run_id: r for r in runs}
    assert by_id[killed_run].status == "abandoned"
    assert [t.holder for t in terms] == [holder_a, holder_b]
    assert terms[0].ended_at is None and terms[1].end_reason == "stopped"
    for job in (f"backup:{name}" for name in SYSTEMS):
        mine = [r for r in runs if r.job_id == job and r.status != "skipped"]
        assert {r.holder for r in mine if r.status == "ok"} == {holder_a, holder_b}, job
        for before, after in itertools.pairwise(mine):
            assert before.finished_at is not None, f"{job}: run {before.run_id} never ended"
            assert before.finished_at <= after.started_at, f"{job}: runs overlap"
        assert not [r for r in mine if r.status in ("running", "failed")], job
    # The kernel's witness: no backup ever found its system's lock taken.
    assert backups and all(b.ok for b in backups), [b.error for b in backups if not b.ok]
    print(f"\nfailover on {control_url.split(':')[0]}: takeover {takeover:.2f}s, {len(runs)} runs recorded")
