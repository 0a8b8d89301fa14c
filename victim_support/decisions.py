"""Approving and denying export requests, and the gate every build passes.

A decision is recorded only with its approver's proof (:mod:`dc.approvers`): a signature by
the approver's own credential over the request id, the specification hash, the role, the
reason and the time, written into the audit chain in the same transaction as the row. The
two-person rule counts approvals that verify in the chain, distinct by approver and by
credential; a secret enrolled under two names is refused here, at approval time, by trying
each earlier approver's credential against it (their salts differ, so the public keys do).
A wrong or missing secret is refused before anything is written (exit 3).

:func:`require_buildable` is the only way into a build: the row must agree with the chain
(:func:`victim_support.binding.bind`), the law tables must still allow it, and the chain's
approvals — not the row's status — must reach the quorum.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update

from dc import approvers as credentials
from dc.audit import append, audited, entries_about
from dc.config import Consortium
from dc.errors import N_, Message, UsageError
from victim_support import approval as rules
from victim_support.binding import APPROVE, APPROVED, DENIED, DENY, bind
from victim_support.enrolment import with_enrolled
from victim_support.errors import PolicyRejected, RequestStateError, RequestTampered
from victim_support.prefiling import recorded_estimate
from victim_support.request import ExportRequest, as_asked
from victim_support.settings import ExportSettings
from victim_support.store import export_decisions, export_requests, judge, read_request


def decide(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    request_id: str,
    *,
    approver: str,
    secret: str | None,
    approve: bool,
    reason: str,
    now: datetime,
    via: str = "cli",
) -> ExportRequest:
    """Record one approval or a denial, proven with ``secret``; approved at the quorum of verified approvals."""
    if not approve and not reason.strip():
        raise UsageError(N_("a denial needs --reason"))
    config = with_enrolled(config, engine)

    def work(conn: Connection) -> ExportRequest:
        request = read_request(conn, request_id, settings, now)
        binding = bind(entries_about(conn, request_id), request, settings, config.approvers)
        if binding.problems:
            raise RequestTampered(N_("{problems}; nothing was recorded"), problems="; ".join(binding.problems))
        waiting = rules.unenrolled(settings, request.tenant, config.approvers) if approve else []
        if approve and not waiting:
            _require_checked(conn, config, settings, request, now)  # the enrolment refusal comes first
        role = rules.check_decision(
            status=request.status,
            tenant_id=request.tenant,
            approvals=list(binding.approvals),
            approver=approver,
            requested_by=request.requested_by,
            reason=reason,
            settings=settings,
            waiting=waiting,
        )
        already = conn.execute(
            select(export_decisions.c.id).where(
                export_decisions.c.request_id == request_id, export_decisions.c.approver == approver
            )
        ).first()
        if already is not None:
            raise PolicyRejected(
                N_("'{approver}' has already decided this request; another person must approve"), approver=approver
            )
        at = now.astimezone(UTC).isoformat()
        what = {
            "action": APPROVE if approve else DENY,
            "request": request_id,
            "spec": binding.spec_hash,
            "role": role,
            "reason": reason,
            "at": at,
            "via": via,
        }
        proof = credentials.prove(config.approvers, approver, secret, what)
        for earlier in binding.approvals:
            credential = credentials.credential_of(config.approvers, earlier.approver)
            if credential is not None and secret and credentials.holds(credential, secret):
                raise PolicyRejected(
                    N_(
                        "this secret is also the credential of {approver}, who already approved: each approver "
                        "needs their own secret (nothing was recorded)"
                    ),
                    approver=earlier.approver,
                )
        conn.execute(
            insert(export_decisions).values(
                request_id=request_id,
                approver=approver,
                role=role,
                decision="approve" if approve else "deny",
                at=now,
                reason=reason,
            )
        )
        approvals = binding.approvals
        if approve:
            approvals = (*approvals, rules.Approval(approver, role, now, reason))
        status = rules.DENIED
        if approve:
            status = (
                rules.APPROVED if rules.quorum_reached(list(approvals), request.required_approvals) else rules.PENDING
            )
        if status != request.stored_status:
            conn.execute(update(export_requests).where(export_requests.c.id == request_id).values(status=status))
        append(
            conn,
            actor=approver,
            action=APPROVED if approve else DENIED,
            subject=request_id,
            details={
                **proof.details(),
                "approvals": len(approvals),
                "required": request.required_approvals,
                "status": status,
            },
        )
        denial = None if approve else f"{approver}: {reason}"
        return replace(request, approvals=approvals, status=status, stored_status=status, denial=denial)

    return audited(engine, work)


def require_buildable(
    engine: Engine, config: Consortium, settings: ExportSettings, request_id: str, now: datetime
) -> ExportRequest:
    """The request as its approvers approved it, or the reason it must not be built."""
    config = with_enrolled(config, engine)
    with engine.connect() as conn:
        request = read_request(conn, request_id, settings, now)
        binding = bind(entries_about(conn, request_id), request, settings, config.approvers)
    if binding.problems:
        raise RequestTampered(N_("{problems}; nothing was built"), problems="; ".join(binding.problems))
    _require_lawful(config, settings, request, now, "built")
    request = replace(request, approvals=binding.approvals)
    if request.status != rules.APPROVED:
        have = ""
        if request.status == rules.PENDING:
            have = f" ({len(binding.approvals)} of {request.required_approvals} approvals)"
        raise RequestStateError(
            N_("request {id} is {status}{have}; only approved requests can be built"),
            id=request.id,
            status=request.status,
            have=have,
        )
    return request


def _require_lawful(
    config: Consortium, settings: ExportSettings, request: ExportRequest, now: datetime, what: str
) -> None:
    if request.partner in config.partners and request.tenant in config.tenants:
        decision = judge(config, settings, as_asked(request), now)
        if not decision.allowed or decision.fields != request.fields:
            why = decision.reasons[0] if decision.reasons else Message(N_("the decided fields differ"))
            raise PolicyRejected(
                N_("request {id} no longer passes the law tables: {why}; nothing was {what}"),
                id=request.id,
                why=why,
                what=what,
            )


def _require_checked(
    conn: Connection, config: Consortium, settings: ExportSettings, request: ExportRequest, now: datetime
) -> None:
    """An approval is for a request that can build: checked against the replica when filed, still lawful."""
    if request.partner not in config.partners:
        raise PolicyRejected(
            N_("partner '{partner}' is no longer in the configuration; nothing was recorded"), partner=request.partner
        )
    if recorded_estimate(entries_about(conn, request.id)) is None:
        raise PolicyRejected(
            N_(
                "request {id} was not checked against the replica when it was filed (町字, 被災者台帳, row "
                "estimate), so nobody can know it will build; file it again; nothing was recorded"
            ),
            id=request.id,
        )
    _require_lawful(config, settings, request, now, "recorded")
