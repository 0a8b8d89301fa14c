"""``bcpctl audit verify``: the chain links, and every export request agrees with it.

A chain that links is not enough: whoever can write the control database can leave the chain
alone and edit a request's row (approve it, add a field). So every request row is compared
with its chain entries (:func:`victim_support.binding.bind`), and every request the chain
knows must still have its row. With the configuration, approvals are verified against the
approvers' credentials; without it (a partner checking a copy), the status is compared with
the one the last decision recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from dc.audit import ChainReport, read_entries, verify_entries
from dc.auditentry import AuditEntry
from dc.config import Consortium
from dc.continuation import failover_gaps, gap_document, lost_entries
from dc.errors import N_, Message, message_of
from victim_support.binding import CREATED, bind
from victim_support.errors import RequestTampered
from victim_support.settings import ExportSettings
from victim_support.store import export_requests, read_request


@dataclass(frozen=True)
class RequestProblem:
    request: str
    problem: str


@dataclass(frozen=True)
class IntegrityReport(ChainReport):
    """The chain's verdict and every request that disagrees with it."""

    requests_checked: int = 0
    #: whether approvals were verified against the configured credentials
    signatures_checked: bool = False
    requests: list[RequestProblem] = field(default_factory=list)
    #: every failover the chain continued across, each with what stayed at the old site (dc.continuation)
    failovers: list[dict[str, Any]] = field(default_factory=list)


def verify_control_state(
    engine: Engine,
    anchor: tuple[int, str] | None,
    now: datetime,
    config: Consortium | None = None,
    settings: ExportSettings | None = None,
    recovered: Engine | None = None,
) -> IntegrityReport:
    """The chain and every request against it; ``recovered``: the old site's control database after
    a failover (its chain names the entries that never reached this one)."""
    entries = read_entries(engine)
    chain = verify_entries(entries, anchor)
    problems = _request_problems(engine, entries, now, config, settings or ExportSettings())
    failovers = _failovers(entries, read_entries(recovered) if recovered is not None else None)
    return replace(
        IntegrityReport(**asdict(chain)),
        ok=chain.ok and not problems[1],
        requests_checked=problems[0],
        signatures_checked=config is not None,
        requests=problems[1],
        failovers=failovers,
    )


def _failovers(entries: list[AuditEntry], theirs: list[AuditEntry] | None) -> list[dict[str, Any]]:
    """Each failover gap, with the lost entries named when the old site's chain is given."""
    gaps = failover_gaps(entries)
    found = []
    for i, gap in enumerate(gaps):
        problem = None
        if theirs is not None and i == len(gaps) - 1:  # the recovered chain is the last old site's
            try:
                gap = replace(gap, lost=lost_entries(gap, entries, theirs))
            except ValueError as exc:
                problem = str(exc)
        found.append({**gap_document(gap), "problem": problem})
    return found


def _request_problems(
    engine: Engine,
    entries: list[AuditEntry],
    now: datetime,
    config: Consortium | None,
    settings: ExportSettings,
) -> tuple[int, list[RequestProblem]]:
    by_subject: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_subject.setdefault(entry.subject, []).append(entry)
    found: list[RequestProblem] = []
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(select(export_requests.c.id).order_by(export_requests.c.created_at))]
        for request_id in ids:
            try:
                request = read_request(conn, request_id, settings, now)
            except RequestTampered as exc:
                found.append(RequestProblem(request_id, message_of(exc)))
                continue
            approvers = config.approvers if config is not None else None
            binding = bind(by_subject.get(request_id, []), request, settings, approvers)
            found += [RequestProblem(request_id, problem) for problem in binding.problems]
    known = set(ids)
    for entry in entries:
        if entry.action == CREATED and entry.subject not in known:
            found.append(
                RequestProblem(
                    entry.subject,
                    Message(N_("request {subject} is in the audit chain but its row is gone"), subject=entry.subject),
                )
            )
    return len(ids), found


def first_problem(report: IntegrityReport) -> RequestTampered:
    first = report.requests[0]
    more = f" (and {len(report.requests) - 1} more)" if len(report.requests) > 1 else ""
    return RequestTampered(
        N_("export requests do not match the audit chain: {problem}{more}"), problem=first.problem, more=more
    )
