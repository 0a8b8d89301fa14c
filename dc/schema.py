"""The control database's schema: where it stands, and upgrading it with the Alembic migrations.

The migrations (:mod:`dc.migrations`) are the only thing that creates or changes a table.
An upgrade runs in one transaction that nothing else can upgrade alongside: PostgreSQL's
advisory lock for the transaction, SQLite's ``BEGIN IMMEDIATE`` (the database's one write
lock). So when two processes open a new database at once, the second waits, finds the first
one's schema at the head, and applies nothing; a failing migration leaves the database as
it was.

A database that the release before migrations left behind has no version table and only the
tables its site used: it is recognised by its tables' columns, its missing tables created and
it is recorded at revision 0001 before the later migrations run (migration 0001).

Alembic is imported only to upgrade or report: opening a database that is at the head
costs one query.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Engine, MetaData, inspect, text

from dc.errors import N_, Message, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("bcpctl.schema")

VERSION_TABLE = "alembic_version"
#: the previous release: what an unversioned database of bcpctl is recognised as
PREVIOUS_RELEASE = "0001"
#: in the control database but not bcpctl's schema: APScheduler creates and owns its job store
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})

State = Literal["empty", "unversioned", "behind", "current", "ahead"]


class SchemaBehind(UsageError):
    """The database is older than this bcpctl (exit 2): ``bcpctl db upgrade`` brings it forward."""


class SchemaAhead(UsageError):
    """A newer bcpctl upgraded the database (exit 2): this one must not write to it."""


class SchemaUnrecognised(UsageError):
    """A database without a version table whose tables are not the previous release's (exit 2)."""


class ControlStateMissing(UsageError):
    """A control database that should exist is absent or empty (exit 2); nothing was created in its place.

    An empty control database would be believed: after a failover, a run at the wrong site
    would report "never failed over" from it and file requests where nobody looks.
    """


@dataclass(frozen=True)
class Migration:
    revision: str
    title: str


@dataclass(frozen=True)
class SchemaStatus:
    #: the database's URL, password hidden
    database: str
    #: the revision recorded in the database; ``None`` when it has no version table
    revision: str | None
    head: str
    state: State
    #: what ``bcpctl db upgrade`` would apply, oldest first
    pending: list[Migration]


@dataclass(frozen=True)
class UpgradeResult:
    database: str
    before: str | None
    after: str
    #: the database was the previous release's, without a version table, and is now revision 0001
    adopted: bool
    applied: list[Migration]


def database_name(engine: Engine | Connection) -> str:
    return engine.engine.url.render_as_string(hide_password=True)


@cache
def revisions() -> tuple[str, ...]:
    """Every migration's revision, oldest first: the numbers of the files in ``dc/migrations/versions``."""
    folder = resources.files("dc.migrations") / "versions"
    found = sorted(m[1] for f in folder.iterdir() if (m := re.fullmatch(r"(\d{4})_\w+\.py", f.name)))
    return tuple(found)


def head() -> str:
    return revisions()[-1]


def require_head(engine: Engine, *, create: bool = False) -> None:
    """Return when the database is at the head; with ``create``, create a new, empty one; refuse anything else.

    An existing database is never upgraded here: its upgrade converts stored data and must not
    run under a ``bcpctl serve`` of the previous version (``bcpctl db upgrade`` and the start
    of ``serve`` check for that).
    """
    with engine.connect() as conn:
        if _stored_revision(conn) == head():
            return
    found = status(engine)
    if found.state == "current":
        return
    if found.state == "empty":
        if not create:
            raise _absent(found)
        result = upgrade(engine)
        if result.applied:
            log.info("control database %s created at revision %s", result.database, result.after)
        return
    raise _refusal(found)


def require_tables(engine: Engine) -> None:
    """Refuse (:class:`ControlStateMissing`) a database with no tables at all: only an explicit creator fills one."""
    if (found := status(engine)).state == "empty":
        raise _absent(found)


def _absent(found: SchemaStatus) -> ControlStateMissing:
    return ControlStateMissing(
        N_("the control database {database} has no tables (nothing was created): bcpctl db upgrade creates them"),
        database=found.database,
    )


def _refusal(found: SchemaStatus) -> UsageError:
    if found.state == "ahead":
        return SchemaAhead(
            N_(
                "the control database is at revision {revision}, newer than this bcpctl knows (up to "
                "{head}): a newer bcpctl upgraded it; run that version"
            ),
            revision=found.revision,
            head=found.head,
        )
    where = (
        Message(N_("revision {revision}"), revision=found.revision)
        if found.revision
        else Message(N_("the previous release's schema (no version)"))
    )
    return SchemaBehind(
        N_("the control database is at {where}, this bcpctl needs revision {head}: run bcpctl db upgrade"),
        where=where,
        head=found.head,
    )


def status(engine: Engine) -> SchemaStatus:
    """Where the database's schema stands against this bcpctl's migrations."""
    with engine.connect() as conn:
        return _status(conn)


def _status(conn: Connection) -> SchemaStatus:
    known = revisions()
    revision = _stored_revision(conn)
    state: State
    if revision is None:
        state = "unversioned" if _release_tables(conn) else "empty"
        pending = list(known)
    elif revision not in known:
        state, pending = "ahead", []
    else:
        pending = list(known[known.index(revision) + 1 :])
        state = "behind" if pending else "current"
    return SchemaStatus(database_name(conn), revision, known[-1], state, [_migration(r) for r in pending])


def _stored_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _release_tables(conn: Connection) -> set[str]:
    """The previous release's tables present in the database."""
    return set(inspect(conn).get_table_names()) & set(previous_release().tables)


def upgrade(engine: Engine, target: str | None = None) -> UpgradeResult:
    """Apply the pending migrations (up to ``target``, default the head) in one serialised transaction; logged.

    Refuses (exit 2, nothing changed) a database newer than this bcpctl and one without a
    version table whose tables are not the previous release's.
    """
    from alembic import command

    target = target or head()
    with engine.connect() as conn:
        _serialise(conn)
        before = _status(conn)
        if before.state == "ahead":
            raise _refusal(before)
        if before.state == "unversioned":
            _recognise(conn)
        applied = [m for m in before.pending if m.revision <= target]
        if applied:
            command.upgrade(alembic_config(conn), target)
        conn.commit()
    adopted = before.state == "unversioned"
    if adopted:
        log.info("control database %s: the previous release's schema, recorded as revision 0001", before.database)
    for migration in applied:
        log.info("control database %s: applied migration %s (%s)", before.database, migration.revision, migration.title)
    after = applied[-1].revision if applied else before.revision or target
    return UpgradeResult(before.database, before.revision, after, adopted, applied)


def _serialise(conn: Connection) -> None:
    """Begin the upgrade's transaction so that no other upgrade runs until it ends."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(b"bcpctl/schema-upgrade").digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        # pysqlite leaves DDL outside transactions unless one is begun explicitly; IMMEDIATE
        # takes the write lock now, so a second upgrade waits here (busy timeout) instead of
        # reading a version that is about to change.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _recognise(conn: Connection) -> None:
    """Refuse, changing nothing, tables that carry a previous-release name but not its columns."""
    release = previous_release()
    found = inspect(conn)
    problems = []
    for name in sorted(set(found.get_table_names()) & set(release.tables)):
        have = {column["name"] for column in found.get_columns(name)}
        want = {column.name for column in release.tables[name].columns}
        if have != want:
            extra, lacking = ", ".join(sorted(have - want)), ", ".join(sorted(want - have))
            if extra and lacking:
                said = Message(N_("{table} has {extra} and lacks {lacking}"), table=name, extra=extra, lacking=lacking)
            else:
                said = (
                    Message(N_("{table} has {extra}"), table=name, extra=extra)
                    if extra
                    else Message(N_("{table} lacks {lacking}"), table=name, lacking=lacking)
                )
            problems.append(said)
    if problems:
        raise SchemaUnrecognised(
            N_(
                "the control database {database_name} has no schema version and is not the previous "
                "release's: table {problems}{problems2}; nothing was changed"
            ),
            database_name=database_name(conn),
            problems=problems[0],
            problems2=Message(N_(" (and {count} more)"), count=len(problems) - 1) if len(problems) > 1 else "",
        )


@cache
def previous_release() -> MetaData:
    """The tables of the release before migrations, as migration 0001 declares them."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(script_location())
    release = MetaData()
    script.get_revision(PREVIOUS_RELEASE).module.declare(release)
    return release


@cache
def migration_titles() -> dict[str, str]:
    """revision -> its title (the first line of its docstring): what ``db upgrade`` and ``db current``
    show, and what scripts/catalog.py puts into the catalog for the Japanese operator."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(script_location())
    return {rev.revision: (rev.doc or "").strip().splitlines()[0] for rev in script.walk_revisions()}


def _migration(revision: str) -> Migration:
    return Migration(revision, migration_titles().get(revision, ""))


def script_location() -> str:
    """The migrations' directory inside the installed package (a wheel installs real files)."""
    return str(resources.files("dc.migrations"))


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for running on ``conn`` (no alembic.ini: the script location is the package's)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location().replace("%", "%%"))
    config.attributes["connection"] = conn
    return config
