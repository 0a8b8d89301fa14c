"""What a drill, failover or failback produced: per system, per check, per created resource.

Plain dataclasses: the CLI renders them, the control database stores them as JSON, and the
report writers read that JSON back, so a report can be rebuilt from the database alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dc.errors import N_, Message, joined
from failover.checknames import check_name


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class SystemResult:
    system: str
    tenant: str
    business: str
    tier: int
    group: int
    rpo_target: int | None
    rto_target: int | None
    as_dependency: bool = False
    #: pending, passed, failed, aborted or skipped
    status: str = "pending"
    snapshot_id: str | None = None
    snapshot_time: datetime | None = None
    source_kind: str | None = None
    #: where it was restored (sandbox database, directory); never holds a secret.
    target: str | None = None
    bytes: int = 0
    files: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    #: seconds from the declared disaster time: when work on the system started and ended.
    started_at: float | None = None
    finished_at: float | None = None
    #: fetch and decrypt are busy seconds summed over workers; restore and verify are wall-clock.
    steps: dict[str, float] = field(default_factory=dict)
    fetched_bytes: int = 0
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_met: bool | None = None
    rpo_met: bool | None = None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass
class CleanupResult:
    #: resources verified gone
    removed: list[str] = field(default_factory=list)
    #: resources still present (or not verifiably gone), each with the reason
    leftovers: list[str] = field(default_factory=list)
    #: False when cleanup did not run to the end (that is a failure, never a success)
    completed: bool = True

    @property
    def ok(self) -> bool:
        return self.completed and not self.leftovers


@dataclass
class SweepResult:
    """Leftovers of an earlier run (killed, or whose cleanup failed) that this run removed."""

    run_id: str
    was_status: str
    cleanup: CleanupResult


@dataclass
class RunResult:
    id: str
    kind: str
    mode: str
    consortium: str
    site: str | None
    declared_at: datetime
    status: str = "running"
    target_site: str | None = None
    finished_at: datetime | None = None
    #: the time the recovery point is measured against (point-in-time: the event time)
    rpo_reference: datetime | None = None
    tenant: str | None = None
    selected: list[str] = field(default_factory=list)
    workers: int = 1
    timeout: float | None = None
    systems: list[SystemResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    cleanup: CleanupResult | None = None
    swept: list[SweepResult] = field(default_factory=list)
    aborted: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    operator: str | None = None
    approver: str | None = None
    hooks: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    #: failover: the control state promoted at the target site (failover.controlplane.Promotion)
    control_plane: dict[str, Any] | None = None
    #: failover: per postgres-wal system, what it lost (failover.worklist.failover_losses)
    lost: dict[str, dict[str, Any]] = field(default_factory=dict)

    def verdict(self) -> tuple[str, str | None]:
        """``(status, first problem)``: passed only if every system, check and the cleanup passed."""
        if self.aborted:
            return "aborted", Message(N_("aborted: {reason}"), reason=self.aborted)
        problems: list[str] = [
            Message(N_("{name}: {reason}"), name=s.system, reason=s.error or "") for s in self.systems if not s.ok
        ]
        problems += [
            Message(N_("{name}: {reason}"), name=check_name(c.name), reason=c.detail) for c in self.checks if not c.ok
        ]
        if self.cleanup is not None and not self.cleanup.ok:
            what = joined(self.cleanup.leftovers[:3]) or Message(N_("cleanup did not finish"))
            problems.append(Message(N_("cleanup incomplete: {what}"), what=what))
        if self.error:
            problems.insert(0, self.error)
        if problems:
            more = Message(N_(" (and {count} more)"), count=len(problems) - 1) if len(problems) > 1 else ""
            return "failed", Message(N_("{first}{more}"), first=problems[0], more=more)
        return "passed", None


def to_document(value: Any) -> Any:
    """The JSON form stored in the control database and written as ``report.json``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        doc = {f.name: to_document(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, SystemResult | CleanupResult):
            doc["ok"] = value.ok
        return doc
    if isinstance(value, dict):
        return {str(k): to_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_document(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
