"""The life of every run — drill, failover, failback: recorded, watched, judged, reported.

One context manager owns it (Borg's ``with_repository`` is the model): the run is recorded
as ``running`` with its process id before anything happens, the abort watchers are armed,
and whatever the body does or raises, the run ends with a verdict computed the same way —
passed only if every system, every check and the cleanup passed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from backup.jobs import site_repository
from backup.repository import Repository
from dc.clock import utcnow
from dc.errors import N_, BcpError, Message, message_of, os_reason
from dc.osuser import os_user
from failover.abort import AbortSignal, watch
from failover.context import RunContext
from failover.errors import DrillAborted
from failover.plan import RecoveryPlan
from failover.records import finish_run, record_systems, start_run
from failover.reports import write_reports
from failover.results import RunResult, to_document
from failover.settings import SteadyState


def new_run_id(now: datetime) -> tuple[str, str]:
    """``(run id, token)``; the token names the run's sandboxes."""
    token = secrets.token_hex(4)
    return f"{now:%Y%m%dT%H%M%SZ}-{token}", token


def run_token(run_id: str) -> str:
    """The token of a run id :func:`new_run_id` made."""
    return run_id.rsplit("-", 1)[-1]


def new_run(
    ctx: RunContext,
    kind: str,
    mode: str,
    site: str | None,
    plan: RecoveryPlan,
    *,
    declared: datetime | None = None,
    run_id: str | None = None,
    **fields: Any,
) -> tuple[RunResult, str]:
    """A fresh :class:`RunResult` declared now (or at ``declared``), and the token naming its sandboxes.

    ``run_id``: the id under which the run was announced before it began (a drill started
    from the web, :func:`failover.records.announce_run`), made by :func:`new_run_id`.
    """
    declared = declared or utcnow()
    run_id, token = (run_id, run_token(run_id)) if run_id else new_run_id(declared)
    fields.setdefault("rpo_reference", declared)
    fields["workers"] = fields.get("workers") or ctx.settings.workers
    selected = [s.system for s in plan.steps]
    fields["operator"] = fields.get("operator") or operator_name()
    return RunResult(run_id, kind, mode, ctx.config.consortium, site, declared, selected=selected, **fields), token


def operator_name() -> str:
    """The OS account running the process (real uid): what the run record says was the operator."""
    return os_user()


@contextmanager
def repository_at(ctx: RunContext, site: str, escrow: Sequence[str] = ()) -> Iterator[Repository]:
    """A site's repository, unlocked with the configured passphrase or, if given, escrow shares only."""
    if not escrow:
        with site_repository(ctx.config, site, ctx.config_dir) as repo:
            yield repo
        return
    from backup.escrow import open_repository_with_shares

    pinned = ctx.config.sites[site].manifest_public_key
    with open_repository_with_shares(ctx.backend(site), escrow, manifest_key=pinned) as repo:
        yield repo


@contextmanager
def recorded_run(
    ctx: RunContext,
    result: RunResult,
    *,
    timeout: float | None,
    probe: SteadyState | None = None,
    handle_signals: bool = True,
) -> Iterator[AbortSignal]:
    """Record the run, arm the abort watchers, and always finish with a stored verdict."""
    deadline = result.declared_at + timedelta(seconds=timeout) if timeout else None
    start_run(
        ctx.state,
        result.id,
        kind=result.kind,
        mode=result.mode,
        consortium=ctx.config.consortium,
        site=result.site,
        target_site=result.target_site,
        declared_at=result.declared_at,
        deadline=deadline,
        operator=result.operator,
        approver=result.approver,
        tenant=result.tenant,
    )
    abort = AbortSignal()
    try:
        with watch(abort, timeout=timeout, probe=probe, handle_signals=handle_signals):
            yield abort
    except DrillAborted as exc:
        result.aborted = result.aborted or exc.reason
    except BcpError as exc:
        result.error = message_of(exc)
    except BaseException as exc:
        result.error = Message(N_("internal error: {error}"), error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if abort.triggered and not result.aborted:
            result.aborted = abort.reason
        if abort.ignored:
            result.warnings.append(Message(N_("ignored during cleanup: {names}"), names=", ".join(abort.ignored)))
        result.status, _problem = result.verdict()
        result.finished_at = utcnow()
        rows = [
            {
                "system": s.system,
                "tenant": s.tenant,
                "status": s.status,
                "snapshot_id": s.snapshot_id,
                "snapshot_time": s.snapshot_time,
                "rto_seconds": s.rto_seconds,
                "rpo_seconds": s.rpo_seconds,
                "rto_target": s.rto_target,
                "rpo_target": s.rpo_target,
                "finished_at": result.finished_at,
            }
            for s in result.systems
        ]
        record_systems(ctx.state, result.id, rows + _unreached(ctx, result))
        if result.kind == "drill":
            _record_drill_time(ctx, result)
        try:
            result.reports = write_reports(ctx, result)
        except OSError as exc:
            result.warnings.append(
                Message(
                    N_("report files not written: {strerror} ({filename})"),
                    strerror=os_reason(exc),
                    filename=exc.filename,
                )
            )
        finish_run(ctx.state, result.id, status=result.status, error=_problem, document=to_document(result))


def _unreached(ctx: RunContext, result: RunResult) -> list[dict[str, Any]]:
    """A drill that failed before it reached a selected system failed that system's drill too.

    Otherwise a drill that could not even open the repository records no verdict, and each
    system's newest verdict (``bcp_drill_last_ok``, the dashboard's light) stays the last pass
    while the scheduled drills fail. Recorded, not reported: the run's report lists the
    systems it worked on. An abort before the start (production unhealthy) is no verdict.
    """
    if result.kind != "drill" or result.error is None or result.aborted:
        return []
    reached = {s.system for s in result.systems}
    return [
        {
            "system": system_id,
            "tenant": ctx.config.systems[system_id].tenant,
            "status": "failed",
            "snapshot_id": None,
            "snapshot_time": None,
            "rto_seconds": None,
            "rpo_seconds": None,
            "rpo_target": ctx.config.systems[system_id].rpo,
            "rto_target": ctx.config.systems[system_id].rto,
            "finished_at": result.finished_at,
        }
        for system_id in result.selected
        if system_id not in reached and system_id in ctx.config.systems
    ]


def _record_drill_time(ctx: RunContext, result: RunResult) -> None:
    """Each tenant's share of drill time, for the cost split (割り勘 by measured use, dc.usage)."""
    from dc.usage import record_usage

    seconds: dict[str, float] = {}
    for s in result.systems:
        if s.started_at is not None and s.finished_at is not None:
            seconds[s.tenant] = seconds.get(s.tenant, 0.0) + (s.finished_at - s.started_at)
    for tenant, amount in sorted(seconds.items()):
        record_usage(ctx.state, tenant, "drill_seconds", round(amount, 3), at=result.declared_at, ref=result.id)
