"""Queue mode: three ``serve`` processes share one PostgreSQL control database and its Procrastinate
queue; one is SIGKILLed in the middle, and every queued run is still executed exactly once."""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from backup.opening import open_repository
from backup.snapshot import list_snapshots
from monitoring import workqueue
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.monitoring.conftest import build_lab
from tests.monitoring.serving import ServeProcess
from tests.servers.postgres import PostgresServer

SYSTEMS = 500
#: never due while the test runs: only the runs the test queues are executed
NEVER = "0 0 1 1 *"


def _counts(engine: object) -> dict[str, int]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
    return {str(status): int(n) for status, n in rows}


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_one_killed_every_run_exactly_once(postgres: PostgresServer, tmp_path: Path) -> None:
    name = f"queue_{os.getpid()}"
    url = postgres.create_database(name).replace("postgresql://", "postgresql+psycopg://")
    systems = {}
    for i in range(SYSTEMS):
        source = tmp_path / "sources" / f"s{i:03d}"
        source.mkdir(parents=True)
        (source / "a.csv").write_text(f"{i},住民\n")
        systems[f"goka-{i:03d}"] = {"tenant": "goka", "source": {"kind": "path", "path": str(source)}}
    lab = build_lab(tmp_path / "lab", systems, control_db=url, schedules={"backup": NEVER})
    engine = lab.engine()
    app = workqueue.queue_app(engine)
    assert workqueue.install_schema(app, engine)
    keys = {}
    with app.open():
        for system in systems:
            keys[system] = f"backup:{system}@test"
            assert workqueue.defer_backup(app, system, keys[system]) is not None
        # a second run of a system while one waits is coalesced, as APScheduler coalesces
        assert workqueue.defer_backup(app, "goka-000", "backup:goka-000@again") is None

    def start(n: int) -> ServeProcess:
        return ServeProcess(
            lab.config_path,
            tmp_path / f"serve{n}.log",
            "--queue",
            "--lease-ttl",
            "3",
            "--workers",
            "2",
            env={"BCPCTL_CACHE_DIR": str(tmp_path / f"cache{n}")},  # each its own machine
        )

    # the first is made the leader, the one killed below (any start order works: test_queue_hosts.py)
    workers = [start(0)]
    try:
        workers[0].wait_role("leader", timeout=120)
        workers += [start(1), start(2)]
        for worker in workers[1:]:
            worker.wait_role("standby", timeout=120)
        deadline = time.monotonic() + 600
        while _counts(engine).get("succeeded", 0) < SYSTEMS // 4:
            assert time.monotonic() < deadline, _counts(engine)
            time.sleep(0.2)
        while _counts(engine).get("doing", 0) < 2:
            time.sleep(0.02)
        workers[0].kill()  # SIGKILL, mid-job
        killed_at = _counts(engine)
        while (counts := _counts(engine)).get("succeeded", 0) < SYSTEMS:
            assert time.monotonic() < deadline, counts
            assert not counts.get("failed"), [w.log_text()[-2000:] for w in workers]
            time.sleep(0.5)
        for worker in workers[1:]:
            assert worker.stop()[0] == 0
    finally:
        for worker in workers:
            worker.kill()
    with engine.connect() as conn:
        retried = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE attempts > 0")).scalar()
    assert retried, f"the kill hit no running job ({killed_at})"
    with open_repository(LocalBackend(Path(lab.raw["sites"]["primary"]["repository"])), PASSWORD) as repo:
        runs = collections.Counter(s.tags.get(workqueue.RUN_TAG) for s in list_snapshots(repo))
    assert set(runs) == set(keys.values())
    assert set(runs.values()) == {1}
    engine.dispose()


def test_a_retried_run_that_had_committed_is_not_run_again(tmp_path: Path) -> None:
    """The worker died after the snapshot was written: the retry must find it, not write a second."""
    from monitoring.controller import Controller, ServiceSettings

    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_text("1,住民\n")
    lab = build_lab(
        tmp_path / "lab", {"goka-juki": {"tenant": "goka", "source": {"kind": "path", "path": str(source)}}}
    )
    engine = lab.engine()
    ctx = Controller(engine, lab.config, lab.root, ServiceSettings()).context
    first = workqueue.backup_run(ctx, "goka-juki", "backup:goka-juki@1", retried=False)
    again = workqueue.backup_run(ctx, "goka-juki", "backup:goka-juki@1", retried=True)
    other = workqueue.backup_run(ctx, "goka-juki", "backup:goka-juki@2", retried=True)
    assert first.startswith("snapshot") and again.startswith("already committed") and other.startswith("snapshot")
    with open_repository(LocalBackend(Path(lab.raw["sites"]["primary"]["repository"])), PASSWORD) as repo:
        runs = collections.Counter(s.tags.get(workqueue.RUN_TAG) for s in list_snapshots(repo))
    assert runs == {"backup:goka-juki@1": 1, "backup:goka-juki@2": 1}
    engine.dispose()


@pytest.mark.postgres
def test_a_stalled_job_retried_by_another_worker_first_is_a_lost_race_not_an_error(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Every worker looks for stalled jobs; two that saw the same one both retry it, and only the
    first succeeds. The second is told it lost (False); any other database error still raises."""
    import asyncio

    from procrastinate.exceptions import ConnectorException
    from procrastinate.jobs import Job
    from sqlalchemy import create_engine

    url = postgres.create_database(f"race_{os.getpid()}").replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    app = workqueue.queue_app(engine)
    assert workqueue.install_schema(app, engine)
    with app.open():
        assert workqueue.defer_backup(app, "goka-juki", "backup:goka-juki@1") is not None

    async def race() -> tuple[bool, bool, int, Job]:
        async with app.open_async():
            manager = app.job_manager
            worker = await manager.register_worker()
            taken = await manager.fetch_job([workqueue.QUEUE], worker)
            assert taken is not None
            await asyncio.sleep(0.05)  # the worker's heartbeat is now older than a zero lease
            seen = list(await manager.get_stalled_jobs(seconds_since_heartbeat=0, queue=workqueue.QUEUE))
            assert [job.id for job in seen] == [taken.id]
            first = await workqueue.retry_one(app, seen[0])
            second = await workqueue.retry_one(app, seen[0])  # the other worker, with the same list
            return first, second, await workqueue.retry_stalled(app, 0), taken

    first, second, again, job = asyncio.run(race())
    assert (first, second, again) == (True, False, 0)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, attempts FROM procrastinate_jobs")).one()
    assert (row.status, row.attempts) == ("todo", 1)
    # A schema without the retry function (another Procrastinate version's) is not a lost race.
    with engine.begin() as conn:
        conn.execute(text("DROP FUNCTION procrastinate_retry_job_v2"))

    async def outdated() -> bool:
        async with app.open_async():
            return await workqueue.retry_one(app, job)

    with pytest.raises(ConnectorException):
        asyncio.run(outdated())
    engine.dispose()
