"""An append-only, hash-chained audit log of every request, approval, build and open.

Each entry holds the SHA-256 of the previous one, so editing, removing or reordering any entry
breaks the chain from that point and :func:`verify_entries` names the first bad entry. A chain
without a key can be rewritten wholesale by someone who controls the database, so every
bundle's envelope carries the chain head at build time: the partner holds an anchor that
``bcpctl audit verify --anchor SEQ:HASH`` checks against (truncation and rewrites show up there).
The log lives in the control database, next to the requests and runs it describes, and is
written in the same transaction as the state change it records. It sits in ``dc/`` because
every layer records into it: exports their requests and approvals, failover its approvals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from dc.auditentry import GENESIS, AuditEntry, entry_hash
from dc.continuation import promotion_problem
from dc.errors import N_, Message, UsageError
from dc.state import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    #: text, not a timestamp type: it is hashed into the entry exactly as stored
    Column("at", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

T = TypeVar("T")


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def append(conn: Connection, *, actor: str, action: str, subject: str, details: dict[str, Any]) -> AuditEntry:
    """Append one entry inside the caller's transaction; a concurrent append makes the insert fail."""
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    text = canonical(details)
    digest = entry_hash(seq, at, actor, action, subject, text, prev)
    conn.execute(
        insert(audit_log).values(
            seq=seq, at=at, actor=actor, action=action, subject=subject, details=text, prev_hash=prev, hash=digest
        )
    )
    return AuditEntry(seq, at, actor, action, subject, text, prev, digest)


def audited(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 8) -> T:
    """Run ``work`` in one transaction, retrying when a concurrent writer took the same sequence number."""
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return isinstance(exc, IntegrityError) or "locked" in text or "busy" in text


def read_entries(engine: Engine) -> list[AuditEntry]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    return [AuditEntry(*row) for row in rows]


def entries_about(conn: Connection, subject: str) -> list[AuditEntry]:
    """Every entry about one subject (a request id, a run id), in chain order."""
    rows = conn.execute(select(audit_log).where(audit_log.c.subject == subject).order_by(audit_log.c.seq)).all()
    return [AuditEntry(*row) for row in rows]


def head(engine: Engine) -> tuple[int, str]:
    entries = read_entries(engine)
    return (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)


def _recompute(entry: AuditEntry, prev: str) -> str:
    return entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.details, prev)


def verify_entries(entries: Iterable[AuditEntry], anchor: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain in sequence order; report the first entry that does not follow from the one before.

    A failover's promotion entry must also name, as the last entry it received, the one it
    follows (:func:`dc.continuation.promotion_problem`).
    """
    expected_seq, prev = 1, GENESIS
    count = 0
    seen: dict[int, str] = {}
    for entry in entries:
        count += 1
        problem: str | None = None
        if entry.seq != expected_seq:
            problem = (
                Message(
                    N_("entry {seq} follows entry {value}: entry {expected_seq} is missing or reordered"),
                    seq=entry.seq,
                    value=expected_seq - 1,
                    expected_seq=expected_seq,
                )
                if entry.seq > expected_seq
                else Message(
                    N_("entry {seq} appears out of order after entry {value}"), seq=entry.seq, value=expected_seq - 1
                )
            )
        elif entry.prev_hash != prev:
            problem = Message(
                N_("entry {seq} does not link to entry {value} (removed, inserted or reordered)"),
                seq=entry.seq,
                value=entry.seq - 1,
            )
        elif _recompute(entry, prev) != entry.hash:
            problem = Message(
                N_("entry {seq} ({action} {subject}) was edited: its hash does not match"),
                seq=entry.seq,
                action=entry.action,
                subject=entry.subject,
            )
        else:
            problem = promotion_problem(entry)
        if problem:
            return ChainReport(False, count, expected_seq - 1, prev, entry.seq, problem)
        seen[entry.seq] = entry.hash
        expected_seq, prev = entry.seq + 1, entry.hash
    last = expected_seq - 1
    if anchor is not None:
        anchor_seq, anchor_hash = anchor
        if anchor_seq > last:
            problem = Message(
                N_("the log ends at entry {last} but the anchor names entry {anchor_seq}: entries were removed"),
                last=last,
                anchor_seq=anchor_seq,
            )
            return ChainReport(False, count, last, prev, anchor_seq, problem)
        if anchor_seq > 0 and seen.get(anchor_seq) != anchor_hash:
            problem = Message(
                N_("entry {anchor_seq} differs from the anchor: the log was rewritten"), anchor_seq=anchor_seq
            )
            return ChainReport(False, count, last, prev, anchor_seq, problem)
    return ChainReport(True, count, last, prev)


def verify_log(engine: Engine, anchor: tuple[int, str] | None = None) -> ChainReport:
    """Verify the control database's audit log (the caller reports a broken chain)."""
    return verify_entries(read_entries(engine), anchor)


def parse_anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(N_("invalid anchor '{text}': use SEQ:SHA256HEX as printed in a bundle envelope"), text=text)
    return int(seq), digest
