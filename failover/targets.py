"""Production restore targets: the offsite site's databases and directories for a failover.

A failover restores into ``System.restore_dsn`` / ``restore_dir``. Before anything is fenced
every target is checked: it must be configured, reachable and empty — pg_restore into a
database that already holds tables fails (and must: merging a restore into live data
would corrupt it), and a directory with files in it could hide stale data beside the
restored tree. A missing database on a reachable server is created.
"""

from __future__ import annotations

from pathlib import Path

from backup.sources import redact_dsn
from dc.config import Consortium
from dc.errors import N_, Message
from dc.sourcespec import Source
from failover.plan import RecoveryPlan
from failover.sandbox import Target, with_database

USER_TABLES = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%'"
)


def database_name(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn).get("dbname") or "")


def database_state(dsn: str) -> str:
    """``missing``, ``empty`` or ``busy`` (holds tables); raises if the server is unreachable."""
    import psycopg

    name = database_name(dsn)
    with psycopg.connect(with_database(dsn, "postgres"), autocommit=True, connect_timeout=15) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return "missing"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=15) as conn:
        row = conn.execute(USER_TABLES).fetchone()  # count(*): always one row
    return "busy" if row is not None and row[0] else "empty"


def ensure_database(dsn: str) -> None:
    import psycopg
    from psycopg import sql

    if database_state(dsn) == "missing":
        with psycopg.connect(with_database(dsn, "postgres"), autocommit=True, connect_timeout=15) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database_name(dsn))))


def target_problems(config: Consortium, plan: RecoveryPlan, config_dir: Path | None) -> list[str]:
    """Why the plan's production targets are not ready for a failover (empty list: ready)."""
    problems: list[str] = []
    for step in plan.steps:
        system = config.systems[step.system]
        if step.source_kind in ("postgres", "postgres-wal"):
            if not system.restore_dsn:
                problems.append(Message(N_("{system}: no restore_dsn to fail over into"), system=step.system))
                continue
            try:
                state = database_state(system.restore_dsn)
            except Exception as exc:  # psycopg errors
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                problems.append(
                    Message(
                        N_("{system}: {redact_dsn} unreachable: {first}"),
                        system=step.system,
                        redact_dsn=redact_dsn(system.restore_dsn),
                        first=first,
                    )
                )
                continue
            if state == "busy":
                problems.append(
                    Message(
                        N_("{system}: {redact_dsn} already holds tables"),
                        system=step.system,
                        redact_dsn=redact_dsn(system.restore_dsn),
                    )
                )
        else:
            if not system.restore_dir:
                problems.append(Message(N_("{system}: no restore_dir to fail over into"), system=step.system))
                continue
            path = resolve(system.restore_dir, config_dir)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                problems.append(
                    Message(N_("{system}: {path} is not an empty directory"), system=step.system, path=path)
                )
    return problems


def resolve(path: str, config_dir: Path | None) -> Path:
    p = Path(path)
    return config_dir / p if config_dir is not None and not p.is_absolute() else p


def production_target(config: Consortium, system_id: str, source_kind: str, config_dir: Path | None) -> Target:
    system = config.systems[system_id]
    if source_kind in ("postgres", "postgres-wal"):
        assert system.restore_dsn is not None
        ensure_database(system.restore_dsn)
        return Target(redact_dsn(system.restore_dsn), dsn=system.restore_dsn)
    assert system.restore_dir is not None
    path = resolve(system.restore_dir, config_dir)
    path.mkdir(parents=True, exist_ok=True)
    return Target(str(path), path=path)


def production_source(config: Consortium, system_id: str, config_dir: Path | None) -> Source | None:
    """A system's production data at the offsite site as a backup source: where a failover
    restored it (``restore_dsn``; ``restore_dir``, holding the SQLite file under its own name).

    ``None`` when it has no such place (a ``command`` source, or no target configured): what
    its command reads at the offsite site is not bcpctl's to guess.
    """
    system = config.systems[system_id]
    kind = system.source.kind
    if kind in ("postgres", "postgres-wal") and system.restore_dsn:
        # recovered into a plain database at the offsite: dumped there until failback
        return Source(kind="postgres", dsn=system.restore_dsn, exclude=system.source.exclude)
    if kind in ("path", "sqlite") and system.restore_dir:
        target = resolve(system.restore_dir, config_dir)
        path = target / Path(system.source.path or "").name if kind == "sqlite" else target
        return Source(kind=kind, path=str(path), exclude=system.source.exclude)
    return None
