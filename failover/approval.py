"""Confirmation for failover and failback: ``--yes`` always, and a second person where configured.

Human prompts in a runbook need two-person approval (research §C.10). The second person is
one of ``drills.failover.approvers`` and proves it with their own approver secret — the same
credential as for export approvals (:mod:`dc.approvers`; ``approvers:`` in the configuration
holds only its public verifier). The secret comes from ``$BCPCTL_APPROVER_SECRET`` or a file,
never from the command line, and the approver must not be the operator. The approval signs
what it approves (action, consortium, target site, planned or not, declared time, operator)
and is recorded in the audit chain under the run it started (:func:`record_approval`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from dc.approvers import SECRET_ENV, ApproverAuthFailed, Proof, prove
from dc.audit import append, audited
from failover.errors import ApprovalRefused, ConfirmationRequired
from failover.settings import FailoverSettings


def confirm(
    settings: FailoverSettings,
    approvers: Mapping[str, str],
    *,
    action: str,
    yes: bool,
    operator: str,
    approver: str | None,
    secret: str | None,
    what: Mapping[str, Any],
) -> Proof | None:
    """The approver's signed approval of ``what``, when one was required or given; raise when it is missing or wrong."""
    if not yes:
        raise ConfirmationRequired(f"{action} changes production at both sites: repeat with --yes to confirm")
    if not approver:
        if settings.two_person:
            raise ApprovalRefused(f"{action} needs a second person: give --approver NAME and ${SECRET_ENV}")
        return None
    if approver not in settings.approvers:
        raise ApprovalRefused(f"'{approver}' is not a configured approver (drills.failover.approvers)")
    if approver == operator:
        raise ApprovalRefused(f"the approver must be someone other than the operator ({operator})")
    try:
        return prove(approvers, approver, secret, {"action": action, "operator": operator, **what})
    except ApproverAuthFailed as exc:
        raise ApprovalRefused(exc.message) from None


def confirm_request(
    settings: FailoverSettings,
    approvers: Mapping[str, str],
    action: str,
    request: object,
    operator: str,
    what: Mapping[str, Any],
) -> Proof | None:
    """:func:`confirm` with ``confirmed``, ``approver`` and ``approver_secret`` taken from a request."""
    return confirm(
        settings,
        approvers,
        action=action,
        yes=bool(getattr(request, "confirmed", False)),
        operator=operator,
        approver=getattr(request, "approver", None),
        secret=getattr(request, "approver_secret", None),
        what=what,
    )


def record_approval(engine: Engine, proof: Proof | None, run_id: str) -> None:
    """Put the signed approval into the audit chain under the run it allowed."""
    if proof is None:
        return
    action = f"{proof.statement.get('action')}.approved"
    audited(
        engine, lambda conn: append(conn, actor=proof.approver, action=action, subject=run_id, details=proof.details())
    )
