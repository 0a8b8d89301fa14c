"""Bringing one system back: choose its recovery point, restore it into a target, verify, time it.

Shared by drills (sandbox targets), failover (production targets at the offsite site) and
failback (staging targets at the primary). It never raises for a system's own failure: the
outcome, the reason and the fix go into the :class:`SystemResult`, so one broken system
never hides the others. An abort surfaces as status ``aborted``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backup.dbrestore import restore_postgres, verify_sqlite
from backup.pitr import PitrResult, RecoveryTarget, restore_to_database
from backup.repository import Repository
from backup.restorer import restore_snapshot
from backup.snapshot import Snapshot
from dc.clock import jst_text
from dc.errors import N_, BcpError, Message, library_reason, message_of
from failover.abort import AbortSignal
from failover.errors import DrillAborted
from failover.measure import advice, choose_snapshot
from failover.meter import MeteredRepository, StepMeter
from failover.plan import PlanStep
from failover.results import Check, SystemResult
from failover.sandbox import Target
from failover.verify import run_smoke

if TYPE_CHECKING:
    from failover.context import RunContext


class _Failure(Exception):
    """A system-level failure with the kind that selects its advice."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class RecoveryContext:
    repo: Repository
    #: snapshots per system, as listed once at the start of the run
    snapshots: dict[str, list[Snapshot]]
    abort: AbortSignal
    #: ``time.monotonic()`` at the declared disaster time: offsets are measured from it
    origin: float
    make_target: Callable[[PlanStep, Snapshot], Target]
    before: datetime | None = None
    #: runs after the restore, before the checks (e.g. grant the tenant's login read access)
    after_restore: Callable[[Target], None] | None = None
    #: extra checks on the restored target (tenant separation), run in the verify step
    separation: Callable[[PlanStep, Target], list[Check]] | None = None
    smoke: dict[str, str] = field(default_factory=dict)
    smoke_expect: dict[str, str] = field(default_factory=dict)
    on_bytes: Callable[[int], None] | None = None
    #: recovers a postgres-wal system into a database to a moment (none: the newest WAL):
    #: ``(system, dsn, before)`` (:func:`backup.pitr.restore_to_database`)
    point_in_time: Callable[[str, str, datetime | None], PitrResult] | None = None
    #: the targets actually used, by system (failback swaps them into place afterwards)
    targets: dict[str, Target] = field(default_factory=dict)

    def offset(self) -> float:
        return round(time.monotonic() - self.origin, 3)


def snapshots_by_system(
    repo: Repository, *, tag: tuple[str, str] | None = None, errors: dict[str, str] | None = None
) -> dict[str, list[Snapshot]]:
    """Every readable snapshot, grouped by system, oldest first (optionally only those with a tag).

    Unreadable snapshots are skipped (listed in ``errors`` if given): one damaged snapshot must
    not stop the recovery of every other system.
    """
    from backup.snapshot import list_snapshots

    grouped: dict[str, list[Snapshot]] = {}
    for snap in list_snapshots(repo, errors={} if errors is None else errors):
        if tag is None or snap.tags.get(tag[0]) == tag[1]:
            grouped.setdefault(snap.system or "", []).append(snap)
    return grouped


def new_result(step: PlanStep, group: int) -> SystemResult:
    return SystemResult(
        step.system, step.tenant, step.business, step.tier, group, step.rpo, step.rto, step.as_dependency
    )


def recover_system(ctx: RecoveryContext, step: PlanStep, group: int) -> SystemResult:
    result = new_result(step, group)
    result.started_at = ctx.offset()
    meter = StepMeter()
    view = MeteredRepository(ctx.repo, meter, ctx.abort, ctx.on_bytes)
    phase = "restore"
    started = time.monotonic()
    try:
        ctx.abort.check()
        snap = choose_snapshot(ctx.snapshots.get(step.system, []), ctx.before)
        if snap is None:
            when = f" taken before {jst_text(ctx.before)}" if ctx.before else ""
            raise _Failure("NoSnapshot", f"no snapshot of {step.system}{when} in {ctx.repo.backend.url}")
        result.snapshot_id, result.snapshot_time, result.source_kind = snap.id, snap.time, snap.source_kind
        if snap.tenant is not None and snap.tenant != step.tenant:
            raise _Failure("TenantMismatch", f"snapshot {snap.short_id} is labelled tenant '{snap.tenant}'")
        target = ctx.make_target(step, snap)
        ctx.targets[step.system] = target
        result.target = target.description
        if snap.source_kind == "postgres-wal":
            _recover_to_moment(ctx, step, target, result)
            sqlite_file = None
        else:
            sqlite_file = _restore(view, snap, target, result)
        result.steps["restore"] = round(time.monotonic() - started, 3)
        phase, started = "verify", time.monotonic()
        ctx.abort.check()
        if ctx.after_restore is not None:
            ctx.after_restore(target)
        if ctx.separation is not None:
            result.checks.extend(ctx.separation(step, target))
        if smoke := ctx.smoke.get(step.system):
            result.checks.append(
                run_smoke(
                    smoke,
                    target,
                    system=step.system,
                    tenant=step.tenant,
                    kind=snap.source_kind,
                    sqlite_file=sqlite_file,
                    expect=ctx.smoke_expect.get(step.system),
                )
            )
        failed = next((c for c in result.checks if not c.ok), None)
        if failed is not None:
            kind = "SmokeFailed" if failed.name == "smoke" else "IsolationBreach"
            raise _Failure(kind, Message(N_("{name}: {reason}"), name=failed.name, reason=failed.detail))
        result.status = "passed"
    except DrillAborted as exc:
        result.status, result.error = "aborted", exc.reason
    except _Failure as exc:
        result.status, result.error, result.fix = "failed", exc.args[0], advice(exc.kind)
    except BcpError as exc:
        result.status, result.error, result.fix = "failed", message_of(exc), advice(type(exc).__name__)
    except Exception as exc:  # psycopg and OS errors from the target: the system failed, the run goes on
        first = library_reason(exc) if str(exc).strip() else type(exc).__name__
        result.status, result.error, result.fix = "failed", first, advice(type(exc).__name__)
    finally:
        view.close()
        result.steps.setdefault(phase, round(time.monotonic() - started, 3))
        result.steps["fetch"] = round(meter.fetch_seconds, 3)
        result.steps["decrypt"] = round(meter.decrypt_seconds, 3)
        result.fetched_bytes = meter.fetch_bytes
        result.finished_at = ctx.offset()
    return result


def _recover_to_moment(ctx: RecoveryContext, step: PlanStep, target: Target, result: SystemResult) -> None:
    """A postgres-wal system: base backup + WAL replay up to ``before`` (or the newest WAL), its
    RTO split into base restore and replay, its RPO measured from the last transaction recovered."""
    if ctx.point_in_time is None or target.dsn is None:
        raise _Failure("TargetMissing", "a postgres-wal system needs a database target and its configuration")
    recovered = ctx.point_in_time(step.system, target.dsn, ctx.before)
    result.tables = dict(recovered.tables)
    result.steps["base"], result.steps["replay"] = recovered.base_seconds, recovered.replay_seconds
    if recovered.recovered_to is not None:
        result.snapshot_time = datetime.fromisoformat(recovered.recovered_to)
    result.snapshot_id = recovered.base_snapshot


def _restore(view: Repository, snap: Snapshot, target: Target, result: SystemResult) -> Path | None:
    """Restore ``snap`` into ``target`` (verifying hashes and row counts); the SQLite file, if any."""
    if snap.source_kind == "postgres":
        if target.dsn is None:
            raise _Failure("TargetMissing", "a PostgreSQL snapshot needs a database target")
        db = restore_postgres(view, snap, target.dsn)
        result.bytes, result.tables = db.bytes, dict(db.tables)
        return None
    if target.path is None:
        raise _Failure("TargetMissing", f"a {snap.source_kind} snapshot needs a directory target")
    restored = restore_snapshot(view, snap, target.path)
    result.bytes, result.files = restored.bytes, restored.files
    if snap.source_kind != "sqlite":
        return None
    sqlite_file = target.path / Path(snap.source_spec).name
    mismatches = verify_sqlite(snap, sqlite_file)
    if mismatches:
        table, (want, got) = next(iter(mismatches.items()))
        raise _Failure("VerificationFailed", f"restored table {table} has {got} rows, the backup recorded {want}")
    result.tables = dict(snap.verify.get("tables", {}))
    return sqlite_file


def point_in_time(ctx: RunContext, site: str) -> Callable[[str, str, datetime | None], PitrResult] | None:
    """How a drill or failover recovers a postgres-wal system: into its database, to the moment
    (a failover: the newest WAL), from the base backups and WAL of the site it runs at."""
    if ctx.config_file is None:
        return None
    config_file = ctx.config_file

    def recover(system: str, dsn: str, before: datetime | None) -> PitrResult:
        return restore_to_database(ctx.config, config_file, system, RecoveryTarget(time=before), dsn, site=site)

    return recover
