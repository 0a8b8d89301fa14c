"""Queue mode across machines: a database's backups run on the database's own host, and
``serve`` processes may all start at the same instant (real PostgreSQL, real ``serve``)."""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from backup.opening import open_repository
from backup.snapshot import list_snapshots
from monitoring import workqueue
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.monitoring.conftest import Lab, build_lab
from tests.monitoring.serving import ServeProcess
from tests.servers.postgres import PostgresServer

#: never due while the test runs
NEVER = "0 0 1 1 *"
DB_HOST = "db1"


def _control_db(postgres: PostgresServer, name: str) -> str:
    return postgres.create_database(f"{name}_{os.getpid()}").replace("postgresql://", "postgresql+psycopg://")


def _start_at_once(lab: Lab, tmp_path: Path, argsets: list[list[str]]) -> list[ServeProcess]:
    """One ``serve --queue`` per argument list, all spawned at the same instant (a barrier)."""
    barrier = threading.Barrier(len(argsets))
    started: dict[int, ServeProcess] = {}

    def spawn(n: int, args: list[str]) -> None:
        barrier.wait()
        started[n] = ServeProcess(
            lab.config_path,
            tmp_path / f"serve{n}.log",
            "--queue",
            "--lease-ttl",
            "3",
            "--workers",
            "2",
            *args,
            env={"BCPCTL_CACHE_DIR": str(tmp_path / f"cache{n}")},  # each its own machine
        )

    threads = [threading.Thread(target=spawn, args=(n, args)) for n, args in enumerate(argsets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [started[n] for n in range(len(argsets))]


def _roles(workers: list[ServeProcess]) -> list[str]:
    deadline = time.monotonic() + 120
    while True:
        roles = [str((w.readyz() or {}).get("role")) for w in workers]
        for worker in workers:
            assert worker.proc.poll() is None, f"a serve refused to start: {worker.log_text()[-2000:]}"
        if sorted(roles) == ["leader"] + ["standby"] * (len(workers) - 1):
            return roles
        assert time.monotonic() < deadline, roles
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_started_at_the_same_instant_all_serve(postgres: PostgresServer, tmp_path: Path) -> None:
    """No start order: the three come up (one leader, two standbys) on a control database whose
    queue schema does not exist yet, and together run every queued backup."""
    systems = {}
    for i in range(12):
        source = tmp_path / "sources" / f"s{i:02d}"
        source.mkdir(parents=True)
        (source / "a.csv").write_text(f"{i},住民\n")
        systems[f"goka-{i:02d}"] = {"tenant": "goka", "source": {"kind": "path", "path": str(source)}}
    lab = build_lab(tmp_path / "lab", systems, control_db=_control_db(postgres, "at_once"), schedules={"backup": NEVER})
    engine = lab.engine()
    workers = _start_at_once(lab, tmp_path, [[], [], []])
    try:
        _roles(workers)
        app = workqueue.queue_app(engine)
        assert not workqueue.install_schema(app, engine), "a serve installs the queue schema"
        with app.open():
            for system in systems:
                assert workqueue.defer_backup(app, system, f"backup:{system}@at-once") is not None
        deadline = time.monotonic() + 300
        while True:
            with engine.connect() as conn:
                done = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")).scalar()
            if done == len(systems):
                break
            assert time.monotonic() < deadline, done
            time.sleep(0.2)
        for worker in workers:
            assert worker.stop()[0] == 0
    finally:
        for worker in workers:
            worker.kill()
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_database_backup_runs_only_on_the_worker_of_its_host(postgres: PostgresServer, tmp_path: Path) -> None:
    """Systems with ``run_on: db1`` are queued for db1 and taken only by ``serve --host db1``;
    the others only by the worker without ``--host`` — whichever of the two leads; six systems
    due together are queued by concurrent scheduler threads without one queueing failing."""
    dsn = postgres.create_database(f"juki_{os.getpid()}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE residents (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO residents VALUES (1, '五霞 太郎'), (2, '五霞 花子')")
    systems: dict[str, dict[str, object]] = {}
    for i in range(3):
        systems[f"goka-db{i}"] = {
            "tenant": "goka",
            "source": {"kind": "postgres", "dsn": dsn},
            "run_on": DB_HOST,
            "schedule": "2s",
        }
        source = tmp_path / "sources" / f"f{i}"
        source.mkdir(parents=True)
        (source / "a.csv").write_text(f"{i},住民\n")
        systems[f"goka-files{i}"] = {
            "tenant": "goka",
            "source": {"kind": "path", "path": str(source)},
            "schedule": "2s",
        }
    hosts = {DB_HOST: {"site": "primary", "role": "database", "address": "127.0.0.1"}}
    lab = build_lab(
        tmp_path / "lab",
        systems,
        hosts=hosts,
        control_db=_control_db(postgres, "hosts"),
        schedules={"backup": NEVER},
    )
    engine = lab.engine()
    db_worker, other = _start_at_once(lab, tmp_path, [["--host", DB_HOST], []])
    workers = [db_worker, other]
    try:
        _roles(workers)
        deadline = time.monotonic() + 300
        while True:
            with engine.connect() as conn:
                done: dict[str, int] = dict(
                    conn.execute(
                        text(
                            "SELECT args->>'system', count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
                            " GROUP BY 1"
                        )
                    ).all()
                )
            if set(done) == set(systems) and min(done.values()) >= 2:
                break
            assert time.monotonic() < deadline, done
            time.sleep(0.3)
        for worker in workers:
            assert worker.stop()[0] == 0
    finally:
        for worker in workers:
            worker.kill()
    with engine.connect() as conn:
        queues: dict[str, str] = dict(
            conn.execute(text("SELECT DISTINCT args->>'system', queue_name FROM procrastinate_jobs")).all()
        )
    assert queues == {s: workqueue.queue_for(DB_HOST if "db" in s else None) for s in systems}
    with engine.connect() as conn:
        # the leader queues from several scheduler threads at once: every queueing ran through
        failed = conn.execute(
            text("SELECT job_id, error FROM scheduler_job_runs WHERE kind = 'backup' AND status = 'failed'")
        ).all()
    assert failed == []
    with open_repository(LocalBackend(Path(lab.raw["sites"]["primary"]["repository"])), PASSWORD) as repo:
        ran: dict[str, set[str]] = collections.defaultdict(set)
        for snapshot in list_snapshots(repo):
            ran[str(snapshot.system)].add(snapshot.tags[workqueue.WORKER_TAG].split(":")[1])  # the serve's pid
    assert set(ran) == set(systems)
    for system, pids in ran.items():
        assert pids == {str((db_worker if "db" in system else other).proc.pid)}, system
    engine.dispose()
