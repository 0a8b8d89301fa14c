"""The audit chain across a failover: where it continued, and what stayed behind at the old site.

At a failover the offsite promotes its copy of the control state, and its first audit entry
(action :data:`PROMOTED`) records the failover and the hash of the last entry it received. That
entry is appended like any other, so it links to the received head and the chain verifies
across the failover. What it cannot contain are the entries the old site wrote after its
last copy was taken: those are the control-plane RPO, and they are never passed over in
silence. :func:`failover_gaps` turns every promotion into a :class:`Gap` whose statement names
them ("entries after seq N at primary … are unknown"); given the old site's chain once it is
recovered, :func:`lost_entries` names them one by one.

A promotion entry is checked like the chain itself: one that names a received head other
than the entry it follows was edited or inserted (:func:`promotion_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dc.auditentry import AuditEntry
from dc.clock import jst_text
from dc.errors import N_, Message

#: the action of the first entry a site writes after promoting its copy of the control state
PROMOTED = "control.promoted"
#: the sources that are a copy received from the old site (a shipped copy restored, a streaming
#: standby promoted): their promotion entry must follow the last entry received
COPIED = ("restored", "streamed")


@dataclass(frozen=True)
class Gap:
    """One failover seen from the chain: what the promoted site received, and what it did not."""

    #: the promotion entry
    seq: int
    site: str
    from_site: str
    #: ``restored`` (a shipped copy), ``streamed`` (a standby), ``kept`` (already promoted here) or ``empty``
    source: str
    #: the last entry received from ``from_site`` (0: none)
    received_seq: int
    received_at: str | None
    #: when the copy that was promoted was taken at ``from_site``
    copy_time: str | None
    declared_at: str | None
    #: the measured control-plane RPO: declared disaster minus the copy's time
    rpo_seconds: float | None
    #: entries of ``from_site``'s recovered chain that never reached ``site`` (``None``: unknown)
    lost: tuple[AuditEntry, ...] | None = None
    #: a failback's handover: ``from_site`` was fenced before, so nothing it wrote is missing
    planned: bool = False

    def statement(self) -> str:
        """One line for people: which entries stayed behind, and the control-plane RPO."""
        copy = f" (its copy of {_jst(self.copy_time)})" if self.copy_time else ""
        rpo = f"{self.rpo_seconds:.1f} s" if self.rpo_seconds is not None else "not measured"
        if self.lost is not None:
            listed = ", ".join(f"{e.seq} {e.action} {e.subject}" for e in self.lost[:5])
            more = f" (and {len(self.lost) - 5} more)" if len(self.lost) > 5 else ""
            named = f": {listed}{more}" if self.lost else ""
            return (
                f"{len(self.lost)} entr{'y' if len(self.lost) == 1 else 'ies'} after seq {self.received_seq} at "
                f"{self.from_site}{copy} never reached {self.site}{named}; control-plane RPO = {rpo}"
            )
        if self.source == "empty":
            return f"no control-state copy of {self.from_site} reached {self.site}: all of its entries are unknown"
        if self.planned and self.source in COPIED:
            return (
                f"{self.from_site} handed its control state over to {self.site} after seq {self.received_seq}, "
                f"fenced first: nothing it wrote is missing; control-plane RPO = {rpo}"
            )
        return (
            f"entries after seq {self.received_seq} at {self.from_site}{copy} are unknown at {self.site}: "
            f"control-plane RPO = {rpo}"
        )


def _jst(value: str | None) -> str:
    return jst_text(value, seconds=True)


def promotion_problem(entry: AuditEntry) -> str | None:
    """Why a promotion entry does not belong where it stands (``None``: it does)."""
    if entry.action != PROMOTED:
        return None
    details = entry.parsed_details()
    if details.get("source") not in COPIED:
        return None
    if details.get("received_seq") != entry.seq - 1 or details.get("received_hash") != entry.prev_hash:
        return Message(
            N_(
                "entry {seq} ({action}) names entry {received_seq} as the last one received "
                "but follows entry {previous}: it was edited or moved"
            ),
            seq=entry.seq,
            action=PROMOTED,
            received_seq=details.get("received_seq"),
            previous=entry.seq - 1,
        )
    return None


def failover_gaps(entries: Iterable[AuditEntry]) -> list[Gap]:
    """Every promotion of a control-state copy in the chain, oldest first."""
    gaps = []
    for entry in entries:
        if entry.action != PROMOTED:
            continue
        d = entry.parsed_details()
        if d.get("source") == "kept":
            continue  # a re-run over a copy already promoted: its first promotion is the gap
        rpo = d.get("rpo_seconds")
        gaps.append(
            Gap(
                seq=entry.seq,
                site=str(d.get("site") or ""),
                from_site=str(d.get("from_site") or "the old site"),
                source=str(d.get("source") or ""),
                received_seq=int(d.get("received_seq") or 0),
                received_at=d.get("received_at"),
                copy_time=d.get("copy_time"),
                declared_at=d.get("declared_at"),
                rpo_seconds=float(rpo) if isinstance(rpo, int | float) else None,
                planned=bool(d.get("planned")),
            )
        )
    return gaps


def lost_entries(gap: Gap, ours: Sequence[AuditEntry], theirs: Sequence[AuditEntry]) -> tuple[AuditEntry, ...]:
    """The entries of ``theirs`` (the old site's recovered chain) after the received head.

    Raises ``ValueError`` when the two chains differ at or before the received head: then they
    are not the same chain, and nothing can be said about what was lost.
    """
    mine = {e.seq: e.hash for e in ours if e.seq <= gap.received_seq}
    other = {e.seq: e.hash for e in theirs}
    for seq in range(1, gap.received_seq + 1):
        if other.get(seq) != mine.get(seq):
            raise ValueError(
                f"the recovered chain differs from the one {gap.site} received at entry {seq}: not the same chain"
            )
    return tuple(e for e in theirs if e.seq > gap.received_seq)


def gap_document(gap: Gap) -> dict[str, Any]:
    """A gap as JSON for ``audit verify --json`` and reports."""
    return {
        "seq": gap.seq,
        "site": gap.site,
        "from_site": gap.from_site,
        "source": gap.source,
        "received_seq": gap.received_seq,
        "received_at": gap.received_at,
        "copy_time": gap.copy_time,
        "declared_at": gap.declared_at,
        "rpo_seconds": gap.rpo_seconds,
        "planned": gap.planned,
        "lost": None
        if gap.lost is None
        else [{"seq": e.seq, "action": e.action, "subject": e.subject, "at": e.at} for e in gap.lost],
        "statement": gap.statement(),
    }
