"""Tearing sandboxes down and proving they are gone — and finding what a killed drill left behind.

Cleanup is a checked step, not a courtesy (research §C.7): each recorded resource is removed,
then looked up again; only a resource verified absent is marked ``removed``. Anything else
is a leftover and makes the run fail, so a cut-off cleanup can never show green (the
failure mode reported for a similar product: "completed" while DR guests kept running).

Only names that look like drill sandboxes (``bcpdrill_…`` databases and roles,
``bcpdrill-…`` directories) are ever removed, so a damaged control database cannot turn
cleanup into the deletion of a production database.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from backup.pgcluster import stop_clusters_in
from backup.pitrscratch import sweep_scratch
from dc.errors import N_, Message
from failover.records import mark_killed, stale_runs
from failover.resources import ResourceRecord, leftover_runs, open_resources, set_resource_state
from failover.results import CleanupResult, SweepResult
from failover.sandbox import DIR_PREFIX, PG_PREFIX

if TYPE_CHECKING:
    from psycopg.sql import Composed

#: the ``was_status`` of a swept scratch cluster whose point-in-time restore was killed
ORPHANED_SCRATCH = "orphaned point-in-time scratch"


def _looks_like_sandbox(res: ResourceRecord) -> bool:
    if res.kind in ("pg_database", "pg_role"):
        return res.name.startswith(PG_PREFIX)
    if res.kind == "directory":
        return Path(res.name).name.startswith(DIR_PREFIX) and Path(res.name).parent == Path(res.location)
    return False


def _pg(location: str, statement: str | Composed, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(location, autocommit=True, connect_timeout=15) as conn:
        cur = conn.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []


def remove(res: ResourceRecord) -> None:
    """Remove one resource; removing one that does not exist is not an error."""
    from psycopg import sql

    if res.kind == "pg_database":
        # WITH (FORCE) (PostgreSQL 13+) ends sessions a smoke command may have left open.
        _pg(res.location, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(res.name)))
    elif res.kind == "pg_role":
        _pg(res.location, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(res.name)))
    elif res.kind == "directory":
        if Path(res.name).exists():
            # a scratch cluster a killed run left (failover.lostscratch) may still be running
            stop_clusters_in(Path(res.name))
            shutil.rmtree(res.name)
    else:
        raise ValueError(f"unknown resource kind {res.kind}")


def still_present(res: ResourceRecord) -> bool:
    """Look the resource up again: the only evidence that counts for "removed"."""
    if res.kind == "pg_database":
        return bool(_pg(res.location, "SELECT 1 FROM pg_database WHERE datname = %s", (res.name,)))
    if res.kind == "pg_role":
        return bool(_pg(res.location, "SELECT 1 FROM pg_roles WHERE rolname = %s", (res.name,)))
    return Path(res.name).exists() or Path(res.name).is_symlink()


def _describe(res: ResourceRecord) -> str:
    label = {"pg_database": "database", "pg_role": "role", "directory": "directory"}.get(res.kind, res.kind)
    return f"{label} {res.name}"


def cleanup_run(state: Engine, run_id: str) -> CleanupResult:
    """Remove every open resource of ``run_id`` (newest first) and verify each is gone."""
    result = CleanupResult()
    for res in open_resources(state, run_id):
        what = _describe(res)
        if not _looks_like_sandbox(res):
            result.leftovers.append(Message(N_("{what}: not a drill sandbox name, refusing to remove it"), what=what))
            set_resource_state(state, res.id, "leftover", "not a drill sandbox name")
            continue
        try:
            remove(res)
            present = still_present(res)
        except Exception as exc:  # OSError, psycopg errors: the server refused or is gone
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            result.leftovers.append(Message(N_("{what}: {reason}"), what=what, reason=reason))
            set_resource_state(state, res.id, "leftover", reason)
            continue
        if present:
            result.leftovers.append(Message(N_("{what}: still exists after removal"), what=what))
            set_resource_state(state, res.id, "leftover", "still exists after removal")
        else:
            result.removed.append(what)
            set_resource_state(state, res.id, "removed")
    return result


def sweep(state: Engine, now: datetime, *, exclude: str | None = None) -> list[SweepResult]:
    """Clean up after runs that were killed, and after runs whose own cleanup left something."""
    swept = []
    for run in stale_runs(state, now):
        if run.id == exclude:
            continue
        mark_killed(state, run.id, "the run's process died before it finished (killed?); its sandboxes were swept")
        swept.append(SweepResult(run.id, "killed", cleanup_run(state, run.id)))
    for run_id in leftover_runs(state):
        if run_id == exclude or any(s.run_id == run_id for s in swept):
            continue
        swept.append(SweepResult(run_id, "leftovers", cleanup_run(state, run_id)))
    # a point-in-time restore's scratch cluster is not a run's resource: its owner record says
    # whether the restore that made it still runs (backup/pitrscratch.py)
    for scratch in sweep_scratch():
        what = f"directory {scratch.path}"
        result = (
            CleanupResult(removed=[what])
            if scratch.removed
            else CleanupResult(leftovers=[f"{what}: {scratch.problem}"])
        )
        swept.append(SweepResult(Path(scratch.path).name, ORPHANED_SCRATCH, result))
    return swept


def cleanup_checked(state: Engine, run_id: str) -> CleanupResult:
    """:func:`cleanup_run` for a ``finally`` block: if cleanup itself breaks, that is a cut-off cleanup."""
    try:
        return cleanup_run(state, run_id)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CleanupResult(leftovers=[Message(N_("cleanup stopped: {reason}"), reason=reason)], completed=False)
