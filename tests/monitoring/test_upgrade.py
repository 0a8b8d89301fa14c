"""``bcpctl serve`` upgrades the control database at its start, unless a scheduler of another version leads.

The refusal holds on the previous release's schema (which recorded no version: its leader is
"another version" by definition) and on today's (a lease or term of another version), on
SQLite through a real ``serve`` process and on a real PostgreSQL through the advisory lock.
A standby of the same version does not stop an upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, insert, update

from dc import schema
from dc.clock import utcnow
from dc.state import connect, open_state
from monitoring.lease import advisory_key, bcpctl_version, scheduler_lease, scheduler_terms
from monitoring.upgrade import OtherVersionRunning, upgrade_control_db
from tests.conftest import Cli
from tests.dc.previous_release import create_as_deployed, fill
from tests.monitoring.conftest import build_lab
from tests.monitoring.serving import ServeProcess
from tests.servers.ports import free_port
from tests.servers.postgres import PostgresServer

OLD_LEADER = "ctl01:4242:1a2b3c4d"


def _lead_as_previous_release(engine: Engine, *, expires_in: float) -> None:
    release = schema.previous_release().tables["scheduler_lease"]
    with engine.begin() as conn:
        conn.execute(
            update(release).values(holder=OLD_LEADER, acquired_at=time.time(), expires_at=time.time() + expires_in)
        )


@pytest.mark.slow
def test_serve_refuses_to_upgrade_under_the_previous_releases_leader_then_upgrades(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    lab = build_lab(tmp_path / "lab", {}, control_db=url)
    (tmp_path / "control.db").unlink()  # the previous release's file instead of this one's
    create_as_deployed(url)
    engine = connect(url)
    fill(engine)
    _lead_as_previous_release(engine, expires_in=600)

    refused = cli("serve", "--config", str(lab.config_path), "--listen", f"127.0.0.1:{free_port()}")
    assert refused.returncode == 1, refused.stderr
    assert (
        f"bcpctl: error: bcpctl serve {OLD_LEADER} (a version from before versions were recorded) holds the "
        f"scheduler lease of {url}; this is bcpctl {bcpctl_version()}: stop it before the schema is upgraded "
        "(nothing was changed)\n"
    ) in refused.stderr
    assert schema.status(engine).state == "unversioned"

    _lead_as_previous_release(engine, expires_in=-1)  # the old leader stopped (its lease ran out)
    with ServeProcess(lab.config_path, tmp_path / "serve.log", "--tick", "0.2") as serve:
        serve.wait_role("leader")
        code, _summary = serve.stop()
    assert code == 0, serve.log_text()[-2000:]
    log = serve.log_text()
    assert "the previous release's schema, recorded as revision 0001" in log
    for revision in schema.revisions():
        assert f"applied migration {revision} (" in log
    assert "alembic" not in log  # its own INFO lines stay out of the service log
    assert schema.status(engine).state == "current"
    engine.dispose()


@pytest.mark.slow
def test_serve_refuses_a_leader_of_another_version_on_todays_schema(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    lab = build_lab(tmp_path / "lab", {}, control_db=url)
    engine = open_state(url)
    now = utcnow()
    lease = {"name": "scheduler", "holder": OLD_LEADER, "acquired_at": now, "version": "0.0.9"}
    with engine.begin() as conn:
        conn.execute(insert(scheduler_lease).values(**lease, expires_at=now + timedelta(minutes=10)))
    refused = cli("serve", "--config", str(lab.config_path), "--listen", f"127.0.0.1:{free_port()}")
    assert refused.returncode == 1
    assert f"bcpctl serve {OLD_LEADER} (version 0.0.9) holds the scheduler lease" in refused.stderr
    # A leader of this version is a standby's peer: the (empty) upgrade goes ahead.
    with engine.begin() as conn:
        conn.execute(update(scheduler_lease).values(version=bcpctl_version()))
    assert upgrade_control_db(engine).applied == []
    engine.dispose()


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    return postgres.create_database(f"upgrade_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def advisory_leader(postgres_url: str) -> Iterator[None]:
    """Another session holds the scheduler's advisory lock, as a leading ``serve`` does."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (advisory_key(),))
        yield


def _wait_until_gone(url: str, pid: int, timeout: float = 30.0) -> None:
    """The server ends a closed session's backend, and frees its locks, a moment after the client
    closes it: on a loaded box that moment was long enough for the next check to see the lock."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None:
            assert time.monotonic() < deadline, f"backend {pid} still there {timeout} s after its session closed"
            time.sleep(0.05)


@pytest.mark.postgres
def test_a_postgres_leader_of_the_previous_release_stops_the_upgrade(postgres_url: str) -> None:
    create_as_deployed(postgres_url)
    engine = connect(postgres_url)
    fill(engine)
    release = schema.previous_release().tables["scheduler_terms"]
    with engine.begin() as conn:
        conn.execute(insert(release).values(id=2, holder=OLD_LEADER, started_at=utcnow()))
    with psycopg.connect(postgres_url, autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (advisory_key(),))
        with pytest.raises(OtherVersionRunning, match=f"{OLD_LEADER} \\(a version from before versions were"):
            upgrade_control_db(engine)
        assert schema.status(engine).state == "unversioned"
        leader_pid = leader.info.backend_pid
    _wait_until_gone(postgres_url, leader_pid)
    assert upgrade_control_db(engine).adopted  # its session ended: the lock is free
    engine.dispose()


@pytest.mark.postgres
def test_a_postgres_leader_of_another_version_stops_the_upgrade(postgres_url: str, advisory_leader: None) -> None:
    engine = open_state(postgres_url, create=True)
    with engine.begin() as conn:
        conn.execute(insert(scheduler_terms).values(holder=OLD_LEADER, started_at=utcnow(), version="0.0.9"))
    with pytest.raises(OtherVersionRunning, match=f"{OLD_LEADER} \\(version 0.0.9\\) holds the scheduler lease"):
        upgrade_control_db(engine)
    with engine.begin() as conn:
        conn.execute(insert(scheduler_terms).values(holder="ctl02:1:0", started_at=utcnow(), version=bcpctl_version()))
    assert upgrade_control_db(engine).applied == []  # the newest open term is this version's
    engine.dispose()
