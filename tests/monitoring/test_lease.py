"""The leader lease on SQLite (lock row with expiry) and PostgreSQL (session advisory lock)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from dc.state import open_state
from monitoring.lease import (
    PostgresLease,
    SqliteLease,
    advisory_key,
    bcpctl_version,
    begin_term,
    current_holder,
    end_term,
    open_lease,
    scheduler_terms,
)
from monitoring.upgrade import upgrade_control_db
from tests.servers.postgres import PostgresServer


def test_sqlite_lease_one_holder_until_it_expires(tmp_path: Path) -> None:
    engine = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    a, b = SqliteLease(engine, "a", ttl=1.0), SqliteLease(engine, "b", ttl=1.0)
    assert a.try_acquire()
    assert not b.try_acquire()
    for _ in range(3):  # renewing keeps it past several ttls
        time.sleep(0.4)
        assert a.renew()
        assert not b.try_acquire()
    time.sleep(1.2)  # a stops renewing (it died)
    assert not a.renew(), "a holder past its own deadline must consider itself out"
    assert b.try_acquire()
    assert not a.try_acquire()
    assert not a.renew()


def test_sqlite_release_hands_over_at_once(tmp_path: Path) -> None:
    engine = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    a, b = SqliteLease(engine, "a", ttl=60), SqliteLease(engine, "b", ttl=60)
    assert a.try_acquire()
    a.release()
    assert b.try_acquire()
    assert not a.try_acquire()


def test_open_lease_picks_the_engine_kind(tmp_path: Path) -> None:
    engine = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    assert isinstance(open_lease(engine, "x", 5), SqliteLease)


def test_terms_are_recorded(tmp_path: Path) -> None:
    engine = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    term = begin_term(engine, "a")
    end_term(engine, term, "stopped")
    end_term(engine, term, "again")  # an ended term keeps its first end
    with engine.connect() as conn:
        row = conn.execute(select(scheduler_terms)).one()
    assert (row.holder, row.end_reason) == ("a", "stopped")


@pytest.mark.postgres
def test_postgres_advisory_lock_is_freed_when_the_session_ends(postgres: PostgresServer) -> None:
    url = postgres.create_database("lease_test")
    engine = open_state(url, create=True)
    a, b = PostgresLease(engine, "a"), PostgresLease(engine, "b")
    assert isinstance(open_lease(engine, "c", 5), PostgresLease)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        assert a.renew()
        # The leader's session dies (as when its process is killed): the server frees the lock.
        with psycopg.connect(postgres.dsn("lease_test"), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = %s AND objid = %s",
                ((advisory_key() >> 32) & 0xFFFFFFFF, advisory_key() & 0xFFFFFFFF),
            ).fetchall()
        assert killed == [(True,)]
        deadline = time.monotonic() + 5
        while not b.try_acquire():
            assert time.monotonic() < deadline, "standby did not get the lock after the leader's session ended"
            time.sleep(0.1)
        assert not a.renew(), "the old leader must notice it lost the lock"
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


@pytest.mark.postgres
def test_postgres_holder_is_known_from_the_instant_it_holds_the_lock(postgres: PostgresServer) -> None:
    """A serve starting between the leader's lock and its recorded term must see the leader's
    version (its own: it may start), never "a scheduler whose term is not recorded yet"; an
    open term of an older leader (killed, its term never ended) must not stand in for it."""
    url = postgres.create_database("lease_holder_test")
    engine = open_state(url, create=True)
    begin_term(engine, "killed-earlier")  # never ended: its process was SIGKILLed
    holder = f"{'h' * 80}:{12345}:abcdef01"  # longer than PostgreSQL keeps of a session name
    lease = PostgresLease(engine, holder)
    try:
        assert current_holder(engine) is None
        assert lease.try_acquire()  # no term recorded yet
        seen = current_holder(engine)
        assert seen is not None and seen.version == bcpctl_version()
        assert holder.startswith(seen.holder) and seen.holder
        upgrade_control_db(engine)  # the same version holds the lease: the start goes on
    finally:
        lease.release()
    assert current_holder(engine) is None
    engine.dispose()
