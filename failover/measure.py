"""RTO and RPO as measured, compared with the targets, and what to fix when they are missed.

Definitions (research §C.5): the declared disaster time is the start of the run; a system's
RTO is the time from then until it is restored *and verified*; its RPO is the declared time
minus the time of the snapshot it was restored from — the writes a real disaster would have
lost. For the ransomware case the reference is the event time given with ``--before``.
Pure functions, tested without clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from backup.snapshot import Snapshot
from dc.duration import format_duration
from dc.errors import N_, Message
from failover.results import SystemResult


def missed_targets(result: SystemResult) -> list[str]:
    """One line per target a system missed (for the warnings of a failover or failback)."""
    lines = []
    if result.rpo_met is False:
        lines.append(
            f"{result.system}: RPO {format_duration(result.rpo_seconds or 0)} exceeds the target "
            f"{format_duration(result.rpo_target or 0)} (writes after its snapshot are lost)"
        )
    if result.rto_met is False:
        lines.append(
            f"{result.system}: RTO {format_duration(result.rto_seconds or 0)} exceeds the target "
            f"{format_duration(result.rto_target or 0)}"
        )
    return lines


def choose_snapshot(snapshots: Iterable[Snapshot], before: datetime | None = None) -> Snapshot | None:
    """The newest snapshot, or the newest taken strictly before ``before`` (last known good)."""
    candidates = [s for s in snapshots if before is None or s.time < before]
    return max(candidates, key=lambda s: (s.time, s.id), default=None)


def apply_measurement(
    result: SystemResult, *, declared: datetime, rpo_reference: datetime, targets_fail: bool = True
) -> None:
    """Fill RTO/RPO and whether each met its target.

    In a drill a missed target turns a pass into a failure: the drill exists to prove the
    targets. In a real failover or failback it must not (``targets_fail=False``): the writes
    are already lost and the clock already ran, and refusing to promote a verified system
    would only add downtime to data loss — the miss is reported, the system still serves.
    """
    if result.finished_at is not None and result.status == "passed":
        result.rto_seconds = round(result.finished_at, 3)
    if result.snapshot_time is not None:
        result.rpo_seconds = round(max(0.0, (rpo_reference - result.snapshot_time).total_seconds()), 3)
    if result.rto_seconds is not None and result.rto_target is not None:
        result.rto_met = result.rto_seconds <= result.rto_target
    if result.rpo_seconds is not None and result.rpo_target is not None:
        result.rpo_met = result.rpo_seconds <= result.rpo_target
    if result.status != "passed" or not targets_fail:
        return
    misses = (
        ("RPO", result.rpo_met, result.rpo_seconds, result.rpo_target, _RPO_FIX),
        ("RTO", result.rto_met, result.rto_seconds, result.rto_target, _RTO_FIX),
    )
    for name, met, measured, target, fix in misses:
        if met is False:
            result.status = "failed"
            result.error = Message(
                N_("{name} {measured} exceeds the target {target}"),
                name=name,
                measured=format_duration(measured or 0),
                target=format_duration(target or 0),
            )
            result.fix = Message(fix)
            return


_RPO_FIX = N_(
    "the newest usable snapshot is too old: back up this system more often and check that "
    "replication keeps the offsite copy within the RPO (bcpctl replicate, lag metrics)"
)
_RTO_FIX = N_(
    "restoring took longer than the target: give the drill more workers, move the system to an "
    "earlier tier, speed up the offsite storage, or revisit the target in the BIA (様式15)"
)

_ADVICE = {
    "CorruptObject": N_(
        "the offsite copy is damaged: run 'bcpctl check --read-data' against the offsite repository, "
        "replicate again from the primary, then drill again"
    ),
    "VerificationFailed": N_(
        "restored data differs from what the backup recorded: check the offsite copy with "
        "'bcpctl check --read-data' and replicate again from the primary"
    ),
    "HostileSnapshot": N_("the snapshot would write outside its target: treat the repository as tampered with"),
    "SnapshotNotFound": N_("no usable snapshot: check that the system is backed up and replicated offsite"),
    "NoSnapshot": N_("no usable snapshot: check that the system is backed up and replicated offsite"),
    "RepositoryError": N_("the restore target refused the data: check the target server's logs and free space"),
    "StorageError": N_("the offsite storage failed: check its reachability and credentials, then drill again"),
    "SmokeFailed": N_("the smoke command failed on restored data: check the system's restore procedure and smoke"),
    "IsolationBreach": N_(
        "another tenant's credentials reach this sandbox: check the drill server's GRANTs and pg_hba.conf"
    ),
    "TenantMismatch": N_("the snapshot is labelled with another tenant: check the backup job's system/tenant settings"),
    "TargetMissing": N_("the site has no restore target for this kind of system: set drill_dsn / drill_dir"),
    "RpoExceeded": N_(
        "the newest offsite snapshot is older than the RPO: check the backup schedule and replication lag"
    ),
    "OperationalError": N_(
        "the restore target server is unreachable: check it is up and reachable from the controller"
    ),
}


def advice(kind: str) -> str:
    """One sentence telling the operator what to do about a failure of this kind."""
    return Message(_ADVICE.get(kind, N_("see the error; fix it and drill again")))


def exposure(newest: Snapshot | None, now: datetime, rpo: int | None) -> dict[str, object]:
    """The RPO a disaster would cost right now, from the newest offsite snapshot of a system."""
    if newest is None:
        return {"snapshot": None, "time": None, "age_seconds": None, "within_rpo": False}
    age = max(0.0, (now - newest.time).total_seconds())
    return {
        "snapshot": newest.id,
        "time": newest.time.isoformat(),
        "age_seconds": round(age, 1),
        "within_rpo": None if rpo is None else age <= rpo,
    }
