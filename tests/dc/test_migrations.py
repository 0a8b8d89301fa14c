"""The control database's migrations: a site's database of the previous release upgrades, losing nothing.

On SQLite and on a real PostgreSQL, the previous release's schema is made both ways a site can
have it (its raw DDL without a version table, as deployed; migration 0001), filled with what
that release wrote, and upgraded: every row reads back with the same values, string times
as the same instants, and the audit chain and the requests bound into it still verify. The
metadata the code declares and the newest migration agree, so a table changed without a
migration fails here. Two processes opening a new database at once both succeed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, MetaData, String, Table, func, insert, inspect, select, text, update

from dc import schema
from dc.audit import read_entries, verify_log
from dc.errors import ProblemFound
from dc.state import UtcDateTime, connect, open_state
from monitoring.lease import current_holder
from tests.dc.previous_release import (
    COOKIE,
    FOLDED,
    T0,
    assert_preserved,
    create_as_deployed,
    create_by_migration,
    expected_rows,
    fill,
    text_time,
    today,
)
from tests.servers.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
AFTER = T0 + timedelta(days=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty control database on each engine bcpctl supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"migrations_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = connect(url, create=True)
    yield engine
    engine.dispose()


def _previous_release(url: str, engine: Engine, how: str) -> None:
    if how == "deployed":
        create_as_deployed(url)
    else:
        create_by_migration(engine)


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


@pytest.mark.parametrize("how", ["deployed", "migration-0001"])
def test_an_upgrade_keeps_every_row_and_value(url: str, engine: Engine, how: str) -> None:
    _previous_release(url, engine, how)
    filled = fill(engine)
    chain = read_entries(engine)
    assert verify_log(engine).ok

    result = schema.upgrade(engine)

    assert (result.before, result.after, result.adopted) == (
        (None, schema.head(), True) if how == "deployed" else ("0001", schema.head(), False)
    )
    assert [m.revision for m in result.applied] == [r for r in schema.revisions() if r > (result.before or "")]
    assert schema.status(engine).state == "current"
    for name, rows in expected_rows(filled).items():
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(today().tables[name])).scalar_one() == len(rows)
    assert_preserved(engine, filled)
    assert read_entries(engine) == chain
    assert verify_log(engine, anchor=(chain[-1].seq, chain[-1].hash)).ok


def test_upgraded_times_read_as_the_instants_that_were_stored(url: str, engine: Engine) -> None:
    """Through the code that reads them: the web's text times, the requests bound into the chain, the lease."""
    from dc.accounts import list_accounts
    from dc.sessions import load_session
    from victim_support.delivery import find_delivery
    from victim_support.integrity import verify_control_state
    from victim_support.settings import ExportSettings
    from victim_support.store import get_request
    from victim_support.tokens import list_tokens

    create_as_deployed(url)
    filled = fill(engine)
    schema.upgrade(engine)

    pending, denied = (row["id"] for row in filled["export_requests"])
    built = find_delivery(engine, denied)
    assert built is not None
    assert built.built_at == datetime(2026, 11, 30, 0, 15, 0, 500000, tzinfo=UTC)  # was "…09:15:00.5+09:00"
    assert built.expires_at == datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    assert built.deleted_at == T0 + timedelta(days=2) and built.deleted_by == "古河市 防災課 鈴木"
    delivered = find_delivery(engine, pending)
    assert delivered is not None and delivered.last_download_at == T0 + timedelta(hours=1)
    assert delivered.expires_at == datetime(2026, 12, 29, 13, 18, 40, tzinfo=UTC)

    request = get_request(engine, pending, ExportSettings(), AFTER)
    assert request.created_at == T0 and request.valid_until == T0 + timedelta(days=7)
    assert request.disaster_date == date(2026, 11, 28)
    refused = get_request(engine, denied, ExportSettings(), AFTER)
    assert refused.status == "denied" and refused.created_at.microsecond == 0
    # The specifications hashed into the chain still match the rows: times, day and all.
    report = verify_control_state(engine, None, AFTER)
    assert report.ok and report.requests_checked == 2 and not report.requests, report

    # What the partner API and the listings show are the instants the release stored as text.
    tokens = {t.id: t for t in list_tokens(engine)}
    for row in filled["web_partner_tokens"]:
        revoked = datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None
        assert (tokens[row["id"]].issued_at, tokens[row["id"]].revoked_at) == (
            datetime.fromisoformat(row["issued_at"]),
            revoked,
        )
        assert tokens[row["id"]].expires_at.tzinfo is not None
    assert [a.created_at for a in list_accounts(engine)] == [
        datetime.fromisoformat(r["created_at"]) for r in sorted(filled["web_accounts"], key=lambda r: r["name"])
    ]
    session = load_session(engine, COOKIE, T0 + timedelta(hours=1))
    assert session is not None and session.expires_at == T0 + timedelta(hours=8)
    assert load_session(engine, COOKIE, T0 + timedelta(hours=9)) is None
    assert current_holder(engine) is None  # the released lease (expiry 0 s) stays released


def test_the_webs_drill_jobs_become_their_runs(url: str, engine: Engine) -> None:
    """The web's job list folds into ``drill_runs`` (migration 0005): what each job said is still there."""
    import json

    from bcpctl.web.drilljobs import DrillJobs
    from dc.audit import entries_about
    from failover.records import get_run

    create_as_deployed(url)
    filled = fill(engine)
    schema.upgrade(engine)
    assert "web_jobs" not in _tables(engine)
    ran, unstarted = filled["web_jobs"]
    run = get_run(engine, ran["run_id"])
    assert run is not None and (run.tenant, run.operator) == ("goka", "sato")  # the account, not "bcpctl"
    job = DrillJobs(engine, lambda: None).get(ran["run_id"])  # type: ignore[arg-type,return-value]
    assert (job.status, job.mode, job.tenant, job.requested_by) == ("passed", "isolated", "goka", "sato")
    assert job.requested_at == T0 and job.finished_at == T0 + timedelta(minutes=12)
    # A job that never became a run (its process died first) is no run; who asked for what, and when,
    # stays in the audit chain.
    assert get_run(engine, unstarted["id"]) is None
    with engine.connect() as conn:
        (requested,) = entries_about(conn, unstarted["id"])
    assert (requested.action, requested.actor) == ("drill.requested", "sato")
    assert json.loads(requested.details) == {"mode": "isolated", "tenant": None}


def test_a_deployed_site_without_some_tables_gets_them(url: str, engine: Engine) -> None:
    """The previous release created a table on first use: a site that never used the web has no web tables."""
    used = {"audit_log", "backup_runs", "replication_pins", "replication_runs", "scheduler_lease", "scheduler_terms"}
    create_as_deployed(url, used)
    assert _tables(engine) == used
    assert schema.status(engine).state == "unversioned"
    result = schema.upgrade(engine)
    assert result.adopted and _tables(engine) == set(today().tables) | {schema.VERSION_TABLE}
    _assert_matches_metadata(engine)


def test_a_deployed_site_with_the_index_its_first_scrape_made_keeps_it(url: str, engine: Engine) -> None:
    create_as_deployed(url)
    fill(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_backup_runs_system_ok_id ON backup_runs (system, ok, id)"))
    schema.upgrade(engine)
    _assert_matches_metadata(engine)


def test_a_bad_stored_time_stops_the_upgrade_and_changes_nothing(url: str, engine: Engine) -> None:
    create_as_deployed(url)
    filled = fill(engine)
    sessions = schema.previous_release().tables["web_sessions"]
    with engine.begin() as conn:
        conn.execute(update(sessions).values(expires_at="next tuesday"))
    with pytest.raises(ProblemFound, match=r"web_sessions\.expires_at of row \(\w+\) holds 'next tuesday'") as stop:
        schema.upgrade(engine)
    assert "nothing was changed" in stop.value.message
    assert schema.status(engine).state == "unversioned"  # not even the version table
    with engine.connect() as conn:
        deliveries = conn.execute(select(schema.previous_release().tables["web_deliveries"])).all()
    assert [r.built_at for r in deliveries] == [r["built_at"] for r in filled["web_deliveries"]]  # still text


def test_tables_that_are_not_the_previous_releases_are_refused(url: str, engine: Engine) -> None:
    create_as_deployed(url, {"backup_runs", "audit_log"})
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE backup_runs ADD COLUMN operator TEXT"))
    with pytest.raises(schema.SchemaUnrecognised, match="table backup_runs has operator; nothing was changed"):
        schema.upgrade(engine)
    assert _tables(engine) == {"backup_runs", "audit_log"}


def test_the_downgrade_restores_the_previous_releases_rows_exactly(url: str, engine: Engine) -> None:
    create_by_migration(engine)
    filled = fill(engine)
    schema.upgrade(engine)
    with engine.connect() as conn:
        command.downgrade(schema.alembic_config(conn), schema.PREVIOUS_RELEASE)
        conn.commit()
    release = schema.previous_release()
    for name in ("web_partner_tokens", "export_requests", "scheduler_lease", "web_sessions"):
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(release.tables[name]))]
        assert sorted(rows, key=str) == sorted(filled[name], key=str), name


def _assert_matches_metadata(engine: Engine, metadata: MetaData | None = None) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata if metadata is not None else today())
    assert differences == [], "the tables declared in code and the newest migration differ (write a migration):\n" + (
        "\n".join(map(str, differences))
    )


def test_the_code_and_the_newest_migration_declare_the_same_schema(url: str) -> None:
    engine = open_state(url, create=True)
    try:
        _assert_matches_metadata(engine)
        # The check sees a change: a column declared without a migration is a difference.
        changed = MetaData()
        for table in today().tables.values():
            table.to_metadata(changed)
        Table("web_sessions", changed, Column("user_agent", String(200)), extend_existing=True)
        with pytest.raises(AssertionError, match="user_agent"):
            _assert_matches_metadata(engine, changed)
    finally:
        engine.dispose()


@pytest.mark.parametrize("how", ["deployed", "migration-0001"])
def test_migration_0001_is_the_previous_releases_schema(url: str, engine: Engine, how: str) -> None:
    """Both ways to the previous release end in the same tables, columns, types, keys and indexes."""
    _previous_release(url, engine, how)
    _assert_matches_metadata(engine, schema.previous_release())


def test_revisions_are_numbered_files_that_follow_each_other() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(schema.script_location())
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert chain == list(schema.revisions()) and script.get_current_head() == schema.head()
    for rev in script.walk_revisions():
        assert rev.down_revision == (None if rev.revision == "0001" else f"{int(rev.revision) - 1:04d}")


def test_two_processes_opening_a_new_database_at_once_both_succeed(url: str, tmp_path: Path) -> None:
    """Each waits, already imported, for one start signal, then opens: one creates the schema, the others wait."""
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from dc.state import open_state\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
        "open_state(sys.argv[1], create=True).dispose()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    time.sleep(1.5)  # every process imported and polling
    go.touch()
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _err in results] == [0, 0, 0, 0], results
    engine = connect(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [schema.head()]
        _assert_matches_metadata(engine)
    finally:
        engine.dispose()


def test_opening_a_database_at_the_head_does_not_import_alembic(url: str) -> None:
    open_state(url, create=True).dispose()
    code = "import sys\nfrom dc.state import open_state\nopen_state(sys.argv[1]).dispose()\n"
    code += "print('alembic' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code, url], cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_a_command_refuses_an_older_database_until_it_is_upgraded(url: str, engine: Engine) -> None:
    create_as_deployed(url)
    with pytest.raises(schema.SchemaBehind, match=r"previous release's schema .* run bcpctl db upgrade"):
        open_state(url)
    schema.upgrade(engine, schema.PREVIOUS_RELEASE)
    with pytest.raises(schema.SchemaBehind, match=f"at revision 0001, this bcpctl needs revision {schema.head()}"):
        open_state(url)
    assert schema.status(engine).state == "behind"  # refusing changed nothing
    schema.upgrade(engine)
    open_state(url).dispose()


def test_a_database_a_newer_bcpctl_upgraded_is_refused(url: str, engine: Engine) -> None:
    open_state(url, create=True).dispose()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    for attempt in (lambda: open_state(url), lambda: schema.upgrade(engine)):
        with pytest.raises(schema.SchemaAhead, match="revision 9001, newer than this bcpctl knows"):
            attempt()


@pytest.mark.parametrize(
    "form", [text_time(T0), "2026-11-29T22:18:40.123456+09:00", "2026-11-29T13:18:40.123456Z"], ids=["utc", "jst", "z"]
)
def test_every_text_time_of_the_release_becomes_a_timestamp(engine: Engine, form: str) -> None:
    """Each text column of the release that holds a time (all but the hashed ``audit_log.at``), in each form."""
    create_by_migration(engine)
    release = schema.previous_release()
    texts = [
        (t.name, c.name)
        for t in release.tables.values()
        if t.name != "audit_log"
        for c in t.columns
        if isinstance(c.type, String) and c.type.length == 40 and (c.name == "at" or c.name.endswith(("_at", "_until")))
    ]
    assert len(texts) == 16, texts
    fill(engine)
    with engine.begin() as conn:
        for table, column in texts:
            conn.execute(update(release.tables[table]).values({column: form}))
    schema.upgrade(engine)
    with engine.connect() as conn:
        for table, column in texts:
            if table in FOLDED:
                continue  # its rows moved on (test_the_webs_drill_jobs_become_their_runs)
            assert isinstance(today().tables[table].c[column].type, UtcDateTime), (table, column)
            assert set(conn.execute(select(today().tables[table].c[column])).scalars()) == {T0}, (table, column)


def test_byte_counts_beyond_2_gib_are_recorded(url: str, engine: Engine) -> None:
    """The previous release's INTEGER byte counts overflowed on PostgreSQL past 2 GiB."""
    from dc.state import backup_runs
    from monitoring.checks import CheckRecord, latest_checks, record_check

    create_as_deployed(url)
    fill(engine)
    schema.upgrade(engine)
    big = 5 << 30
    record_check(engine, CheckRecord("offsite", T0, AFTER, True, True, (1, 7), bytes_read=big))
    with engine.begin() as conn:
        conn.execute(backup_runs.insert().values(repository="r", source="s", started_at=T0, ok=True, bytes_in=big,
                                                 bytes_added=big))  # fmt: skip
        assert conn.execute(select(func.max(backup_runs.c.bytes_in))).scalar_one() == big
    assert {c.site: c.bytes_read for c in latest_checks(engine)}["offsite"] == big


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """New empty databases on demand, on the engine of ``url``'s parameter (one per hypothesis example)."""
    made = iter(range(10**6))
    dialect = request.node.callspec.params["engine_name"]
    if dialect == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'control-{next(made)}.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return lambda: server.create_database(f"times_{os.getpid()}_{next(made)}")


instants = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
spellings = st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"])


@pytest.mark.parametrize("engine_name", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=8, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(instants, offsets, spellings), min_size=1, max_size=40))
def test_any_iso_time_the_text_columns_hold_becomes_that_instant(
    engine_name: str, fresh_url: Callable[[], str], times: list[tuple[datetime, timezone, str]]
) -> None:
    engine = connect(fresh_url(), create=True)
    try:
        create_by_migration(engine)
        written = [when.astimezone(offset).isoformat(timespec=spelling) for when, offset, spelling in times]
        nonces = schema.previous_release().tables["web_request_nonces"]
        with engine.begin() as conn:
            conn.execute(insert(nonces), [{"partner": "koga", "nonce": f"n{i:04d}", "seen_at": w} for i, w in
                                          enumerate(written)])  # fmt: skip
        schema.upgrade(engine)
        table = today().tables["web_request_nonces"]
        with engine.connect() as conn:
            got = list(conn.execute(select(table.c.seen_at).order_by(table.c.nonce)).scalars())
        assert got == [datetime.fromisoformat(w) for w in written]
    finally:
        engine.dispose()
