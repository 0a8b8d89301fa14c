"""The audit chain as exports use it (:mod:`dc.audit`, :mod:`dc.auditentry`) and the error a broken chain raises."""

from __future__ import annotations

from dc.audit import (
    ChainReport,
    append,
    audit_log,
    audited,
    canonical,
    entries_about,
    head,
    parse_anchor,
    read_entries,
    verify_entries,
    verify_log,
)
from dc.auditentry import GENESIS, AuditEntry, entry_hash
from dc.errors import N_
from victim_support.errors import AuditChainBroken

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainReport",
    "append",
    "audit_log",
    "audited",
    "broken",
    "canonical",
    "entries_about",
    "entry_hash",
    "head",
    "parse_anchor",
    "read_entries",
    "verify_entries",
    "verify_log",
]


def broken(report: ChainReport) -> AuditChainBroken:
    return AuditChainBroken(
        N_("audit log broken at entry {first_bad_seq}: {problem}"),
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
    )
