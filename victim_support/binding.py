"""What the audit chain says about a request, and whether its database row still agrees.

The row's status and specification are copies that anyone with write access to the control
database can edit; the audit chain holds the specification hashed when the request was made
and each approval signed by its approver (:mod:`dc.approvers`). :func:`bind` recounts the
approvals that verify — right approver, right credential, right request, the specification
as it is now, still a configured approver of the tenant — and lists every disagreement
between the row and the chain. Builds, decisions and ``audit verify`` all go through it.

Without the configuration (``approvers`` is ``None``: ``audit verify`` on the partner's
side) signatures cannot be checked; the status is then the one the last decision recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dc import approvers as credentials
from dc.auditentry import AuditEntry
from dc.errors import N_, Message
from victim_support import approval as rules
from victim_support.request import ExportRequest, spec_differences, spec_hash, specification
from victim_support.settings import ExportSettings

CREATED = "request.created"
APPROVED = "request.approved"
DENIED = "request.denied"
APPROVE = "export.approve"
DENY = "export.deny"


@dataclass(frozen=True)
class Binding:
    request_id: str
    #: the hash of the specification as the row gives it now
    spec_hash: str
    #: the hash recorded when the request was made (``None``: no creation entry)
    recorded_hash: str | None
    #: approvals that verify and count (distinct approvers and credentials)
    approvals: tuple[rules.Approval, ...]
    #: approval entries that do not count, each with why
    ignored: tuple[str, ...]
    #: pending, approved or denied, as the chain has it
    status: str
    #: every way the row disagrees with the chain (empty: it agrees)
    problems: tuple[str, ...]


def bind(
    entries: Sequence[AuditEntry],
    request: ExportRequest,
    settings: ExportSettings,
    approvers: Mapping[str, str] | None,
) -> Binding:
    """Compare ``request`` (as loaded from its row) with the chain ``entries`` about it."""
    current = specification(request)
    current_hash = spec_hash(current)
    problems: list[str] = []
    created = [e.parsed_details() for e in entries if e.action == CREATED]
    recorded_hash = None
    if not created:
        problems.append(
            Message(N_("request {id} has no '{entry}' entry in the audit chain"), id=request.id, entry=CREATED)
        )
    else:
        spec, recorded_hash = created[0].get("spec"), created[0].get("spec_hash")
        if not isinstance(spec, dict) or recorded_hash != spec_hash(spec):
            problems.append(
                Message(N_("the audit entry creating {id} does not hold the specification it hashed"), id=request.id)
            )
        elif recorded_hash != current_hash:
            changed = "; ".join(spec_differences(spec, current))
            problems.append(
                Message(
                    N_("request {id} differs from what was requested and approved: {changed}"),
                    id=request.id,
                    changed=changed,
                )
            )
    counted, ignored = _count(entries, request, settings, approvers, current_hash)
    decisions = [e.parsed_details() for e in entries if e.action in (APPROVED, DENIED)]
    if any(e.action == DENIED for e in entries):
        status = rules.DENIED
    elif approvers is None:
        status = str(decisions[-1].get("status", rules.PENDING)) if decisions else rules.PENDING
    else:
        status = rules.APPROVED if rules.quorum_reached(counted, request.required_approvals) else rules.PENDING
    stored = request.stored_status or request.status
    if stored != status:
        have: str = ""
        why: str = ""
        if approvers is not None:
            have = Message(
                N_(" ({count} of {required} valid approvals)"), count=len(counted), required=request.required_approvals
            )
            why = Message(N_("; {ignored}"), ignored=ignored[0]) if ignored else ""
        problems.append(
            Message(
                N_("request {id} is '{stored}' in the database but '{status}' by its audit chain{have}{why}"),
                id=request.id,
                stored=stored,
                status=status,
                have=have,
                why=why,
            )
        )
    return Binding(request.id, current_hash, recorded_hash, tuple(counted), tuple(ignored), status, tuple(problems))


def _count(
    entries: Sequence[AuditEntry],
    request: ExportRequest,
    settings: ExportSettings,
    approvers: Mapping[str, str] | None,
    current_hash: str,
) -> tuple[list[rules.Approval], list[str]]:
    counted: list[rules.Approval] = []
    ignored: list[str] = []
    seen_credentials: set[str] = set()
    for entry in entries:
        if entry.action != APPROVED:
            continue
        details = entry.parsed_details()
        found = details.get("approval")
        statement: dict[str, Any] = found if isinstance(found, dict) else {}
        approver = str(statement.get("approver", entry.actor))
        why = _refusal(statement, request, settings, current_hash)
        if why is None and approvers is not None:
            why = credentials.verify(approvers, details)
        if why is None and any(a.approver == approver for a in counted):
            why = Message(N_("counted once already"))
        if why is None and statement.get("credential") in seen_credentials:
            why = Message(
                N_("credential {value} already counted for another approver"), value=statement.get("credential")
            )
        if why is not None:
            ignored.append(f"approval by {approver} (entry {entry.seq}) does not count: {why}")
            continue
        seen_credentials.add(str(statement.get("credential")))
        role = str(rules.approver_role(settings, request.tenant, approver))
        counted.append(
            rules.Approval(
                approver, role, datetime.fromisoformat(str(statement["at"])), str(statement.get("reason", ""))
            )
        )
    return counted, ignored


def _refusal(statement: dict[str, Any], request: ExportRequest, settings: ExportSettings, current: str) -> str | None:
    """Why a (signed) approval statement does not approve this request as it is now."""
    if not statement:
        return "no signed approval (made before approvals were bound, or planted)"
    if statement.get("action") != APPROVE or statement.get("request") != request.id:
        return "it approves something else"
    if statement.get("spec") != current:
        return "it approved a different specification"
    approver = str(statement.get("approver"))
    role = rules.approver_role(settings, request.tenant, approver)
    if role is None:
        return f"'{approver}' is no longer an approver for {request.tenant}"
    if approver == request.requested_by:
        return "the requester cannot approve their own request"
    if role == rules.ALTERNATE_ROLE and not str(statement.get("reason", "")).strip():
        return "an alternate approver gave no reason"
    try:
        datetime.fromisoformat(str(statement.get("at")))
    except ValueError:
        return "no valid time"
    return None
