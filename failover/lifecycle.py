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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from backup.jobs import site_repository
from backup.repository import Repository
from dc.clock import utcnow
from dc.config import Consortium
from dc.errors import BcpError, UsageError
from dc.osuser import os_user
from failover.abort import AbortSignal, watch
from failover.errors import DrillAborted
from failover.plan import RecoveryPlan
from failover.records import finish_run, record_systems, start_run
from failover.reports import write_reports
from failover.results import RunResult, to_document
from failover.settings import DrillSettings, SteadyState, drill_settings
from storage.backend import Backend
from storage.site import open_site


@dataclass
class RunContext:
    """What every run needs: the configuration (and where it was read from) and the control database."""

    config: Consortium
    config_dir: Path | None
    state: Engine
    settings: DrillSettings

    @classmethod
    def create(cls, config: Consortium, where: Path | None, state: Engine) -> RunContext:
        """``where`` is the configuration file (named in errors) or the directory it was read from."""
        if where is not None and where.suffix in (".yaml", ".yml"):
            source, config_dir = str(where), where.parent
        else:
            source, config_dir = str(where or "<config>"), where
        return cls(config, config_dir, state, drill_settings(config, source))

    def smoke(self) -> dict[str, dict[str, str]]:
        """``smoke=`` and ``smoke_expect=`` for a :class:`~failover.recover.RecoveryContext`."""
        return {
            "smoke": {name: s.smoke for name, s in self.config.systems.items() if s.smoke},
            "smoke_expect": dict(self.settings.smoke_expect),
        }

    def backend(self, site: str) -> Backend:
        """The site's repository storage, reached with the site's pinned SSH host keys."""
        return open_site(self.config, site, config_dir=self.config_dir)

    def default_offsite(self) -> str:
        offsite = self.config.offsite_sites
        if not offsite:
            raise UsageError("the configuration has no site with role: offsite to drill at")
        return offsite[0]

    def site(self, name: str | None) -> str:
        name = name or self.default_offsite()
        if name not in self.config.sites:
            raise UsageError(f"unknown site '{name}' (known: {', '.join(self.config.sites)})")
        return name


def new_run_id(now: datetime) -> tuple[str, str]:
    """``(run id, token)``; the token names the run's sandboxes."""
    token = secrets.token_hex(4)
    return f"{now:%Y%m%dT%H%M%SZ}-{token}", token


def new_run(
    ctx: RunContext,
    kind: str,
    mode: str,
    site: str | None,
    plan: RecoveryPlan,
    *,
    declared: datetime | None = None,
    **fields: Any,
) -> tuple[RunResult, str]:
    """A fresh :class:`RunResult` declared now (or at ``declared``), and the token naming its sandboxes."""
    declared = declared or utcnow()
    run_id, token = new_run_id(declared)
    fields.setdefault("rpo_reference", declared)
    fields["workers"] = fields.get("workers") or ctx.settings.workers
    selected = [s.system for s in plan.steps]
    fields.setdefault("operator", operator_name())
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
    )
    abort = AbortSignal()
    try:
        with watch(abort, timeout=timeout, probe=probe, handle_signals=handle_signals):
            yield abort
    except DrillAborted as exc:
        result.aborted = result.aborted or exc.reason
    except BcpError as exc:
        result.error = exc.message
    except BaseException as exc:
        result.error = f"internal error: {type(exc).__name__}: {exc}"
        raise
    finally:
        if abort.triggered and not result.aborted:
            result.aborted = abort.reason
        if abort.ignored:
            result.warnings.append(f"ignored during cleanup: {', '.join(abort.ignored)}")
        result.status, _problem = result.verdict()
        result.finished_at = utcnow()
        record_systems(
            ctx.state,
            result.id,
            [
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
            ],
        )
        if result.kind == "drill":
            _record_drill_time(ctx, result)
        try:
            result.reports = write_reports(ctx, result)
        except OSError as exc:
            result.warnings.append(f"report files not written: {exc.strerror} ({exc.filename})")
        finish_run(ctx.state, result.id, status=result.status, error=_problem, document=to_document(result))


def _record_drill_time(ctx: RunContext, result: RunResult) -> None:
    """Each tenant's share of drill time, for the cost split (割り勘 by measured use, dc.usage)."""
    from dc.usage import record_usage

    seconds: dict[str, float] = {}
    for s in result.systems:
        if s.started_at is not None and s.finished_at is not None:
            seconds[s.tenant] = seconds.get(s.tenant, 0.0) + (s.finished_at - s.started_at)
    for tenant, amount in sorted(seconds.items()):
        record_usage(ctx.state, tenant, "drill_seconds", round(amount, 3), at=result.declared_at, ref=result.id)
