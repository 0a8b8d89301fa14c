"""Load: the reference consortium's shape — 4 tenants x 33 systems = 132 scheduled backup jobs.

Every system has a small file-tree source and a 20 s schedule (interval jobs on the per-job
shifted grid), so one ``serve`` with its default 4 workers must start about 6.6 backups a
second. Over the run every job must fire on every grid point, none may be missed or skipped,
and no two runs of one job may overlap. The figures are printed for the report.
"""

from __future__ import annotations

import itertools
import statistics
import time
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import select

from dc.state import backup_runs
from monitoring.runs import job_runs, read_stats
from monitoring.schedule import ANCHOR, grid_offset
from tests.monitoring.conftest import build_lab
from tests.monitoring.serving import ServeProcess

TENANTS = {
    "hitachiomiya": {"name": "常陸大宮市", "lg_code": "082252", "population": 43695},
    "naka": {"name": "那珂市", "lg_code": "082261", "population": 55986},
    "kasumigaura": {"name": "かすみがうら市", "lg_code": "082309", "population": 44217},
    "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376},
}
PER_TENANT = 33
INTERVAL = 20
RUN_FOR = 40.0
#: a run due this close to SIGTERM may still wait in the executor's queue and never start
END_SLACK = 3.0


@pytest.mark.slow
@pytest.mark.serial  # it measures capacity: other tests running beside it would make it miss runs
def test_132_scheduled_backups_run_without_missed_or_overlapping_runs(tmp_path: Path) -> None:
    systems = {}
    for tenant in TENANTS:
        for i in range(PER_TENANT):
            system_id = f"{tenant}-{i:02d}"
            source = tmp_path / "sources" / system_id
            source.mkdir(parents=True)
            (source / "records.csv").write_text(f"{system_id},住民,{i}\n" * 40)
            systems[system_id] = {
                "tenant": tenant,
                "rpo": f"{2 * INTERVAL}s",
                "source": {"kind": "path", "path": str(source)},
            }
    lab = build_lab(tmp_path / "lab", systems, tenants=TENANTS)
    assert len(lab.config.systems) == 132
    with ServeProcess(lab.config_path, tmp_path / "serve.log", "--tick", "0.5") as serve:
        serve.wait_role("leader", timeout=60)
        leader_since = serve.readyz()["leader_since"]
        time.sleep(RUN_FOR)
        stop_requested = time.time()
        code, summary = serve.stop(timeout=120)
    assert code == 0 and summary["cancelled_jobs"] == 0

    engine = lab.engine()
    with engine.connect() as conn:
        runs = conn.execute(select(job_runs).where(job_runs.c.kind == "backup").order_by(job_runs.c.started_at)).all()
        backups = conn.execute(select(backup_runs)).all()
    stats = {s.job_id: s for s in read_stats(engine)}

    lateness, missing = [], []
    for system_id in systems:
        job_id = f"backup:{system_id}"
        every = [r for r in runs if r.job_id == job_id]
        # Runs still queued when SIGTERM came are recorded as not started; only those may be.
        unstarted = [r for r in every if r.status == "cancelled"]
        assert all(_epoch(r.started_at) >= stop_requested for r in unstarted), job_id
        mine = [r for r in every if r.status != "cancelled"]
        assert {r.status for r in mine} == {"ok"}, (job_id, {r.status for r in mine})
        for before, after in itertools.pairwise(mine):
            assert before.finished_at <= after.started_at, f"{job_id}: overlapping runs"
        offset = grid_offset(job_id, INTERVAL)
        first = ANCHOR.timestamp() + offset
        # Grid points inside the leader's time, with slack for queueing before the stop.
        expected = [
            first + k * INTERVAL
            for k in range(
                int((leader_since + 1 - first) // INTERVAL) + 1,
                int((stop_requested - END_SLACK - first) // INTERVAL) + 1,
            )
        ]
        started = [_epoch(r.started_at) for r in mine]
        for point in expected:
            hits = [s - point for s in started if 0 <= s - point < INTERVAL]
            if not hits:
                missing.append((job_id, point))
            else:
                lateness.append(min(hits))
        assert stats[job_id].missed == 0, job_id
    assert not missing, f"{len(missing)} scheduled runs never started, e.g. {missing[:3]}"
    assert backups and all(b.ok for b in backups)
    durations = [b.seconds for b in backups]
    lateness.sort()
    figures = {
        "jobs": len(systems),
        "runs": len(runs),
        "scheduled_points_checked": len(lateness),
        "missed": sum(s.missed for s in stats.values()),
        "lateness_p50_s": round(statistics.median(lateness), 3),
        "lateness_p95_s": round(lateness[int(len(lateness) * 0.95) - 1], 3),
        "lateness_max_s": round(lateness[-1], 3),
        "backup_seconds_p50": round(statistics.median(durations), 3),
        "backup_seconds_max": round(max(durations), 3),
    }
    print(f"\nload figures: {figures}")
    # A run that starts later than its misfire grace (one interval) would have been skipped.
    assert figures["lateness_max_s"] < INTERVAL


def _epoch(value) -> float:  # type: ignore[no-untyped-def]
    return value.astimezone(UTC).timestamp()
