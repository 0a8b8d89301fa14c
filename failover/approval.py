"""Confirmation for failover and failback: ``--yes`` always, and a second person where configured.

Human prompts in a runbook need two-person approval (research §C.10). The second person is
one of ``drills.failover.approvers`` and proves it with their own approver secret — the same
credential as for export approvals (:mod:`dc.approvers`; ``approvers:`` in the configuration
holds only its public verifier). The secret comes from ``$BCPCTL_APPROVER_SECRET`` or a file,
never from the command line, and the approver must not be the operator. The approval signs
what it approves (action, consortium, target site, planned or not, declared time, operator)
and is recorded in the audit chain under the run it started (:func:`record_approval`).

"Someone other than the operator" means nothing if the operator is only a name the process
claims (``$LOGNAME``), nor the OS account alone where every operator runs as one service
account. So under the two-person rule the operator proves who they are too, with their own
enrolled credential (``--operator NAME`` and ``$BCPCTL_OPERATOR_SECRET`` or a file): two
credentials, two names, and the approver's secret must not also open the operator's
credential (one person enrolled twice). The operator's signed statement is embedded in what
the approver signs, so the audit entry carries both proofs and the OS account of the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from dc.approvers import (
    OPERATOR_SECRET_ENV,
    SECRET_ENV,
    ApproverAuthFailed,
    Credential,
    Proof,
    credential_of,
    holds,
    prove,
)
from dc.audit import append, audited
from dc.errors import N_
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
    operator_secret: str | None = None,
) -> Proof | None:
    """The approver's signed approval of ``what``, when one was required or given; raise when it is missing or wrong.

    Under the two-person rule ``operator`` must be proven by ``operator_secret`` (their own
    enrolled credential); otherwise it is the OS account running the process.
    """
    if not yes:
        raise ConfirmationRequired(
            N_("{action} changes production at both sites: repeat with --yes to confirm"), action=action
        )
    if not approver:
        if settings.two_person:
            raise ApprovalRefused(
                N_("{action} needs a second person: give --approver NAME and ${SECRET_ENV}"),
                action=action,
                SECRET_ENV=SECRET_ENV,
            )
        return None
    if approver not in settings.approvers:
        raise ApprovalRefused(
            N_("'{approver}' is not a configured approver (drills.failover.approvers)"), approver=approver
        )
    if approver == operator:
        raise ApprovalRefused(
            N_("the approver must be someone other than the operator ({operator})"), operator=operator
        )
    statement: dict[str, Any] = {"action": action, "operator": operator, **what}
    try:
        if settings.two_person:
            statement["operator_approval"] = _prove_operator(approvers, action, operator, operator_secret, what)
        proof = prove(approvers, approver, secret, statement)
    except ApproverAuthFailed as exc:
        raise ApprovalRefused(exc.template, **exc.params) from None
    if settings.two_person and secret and _holds(approvers, operator, secret):
        raise ApprovalRefused(
            N_("the approver's secret also opens the operator's credential ({operator}): one person cannot be both"),
            operator=operator,
        )
    return proof


def _prove_operator(
    approvers: Mapping[str, str], action: str, operator: str, secret: str | None, what: Mapping[str, Any]
) -> dict[str, Any]:
    if not secret:
        raise ApprovalRefused(
            N_(
                "the two-person rule needs the operator to prove who they are too: give --operator NAME "
                "(an enrolled credential, 'bcpctl approver enroll') and ${OPERATOR_SECRET_ENV} or "
                "--operator-secret-file"
            ),
            OPERATOR_SECRET_ENV=OPERATOR_SECRET_ENV,
        )
    if _credential(approvers, operator) is None:
        raise ApprovalRefused(
            N_(
                "the operator '{operator}' has no enrolled credential (approvers: in the configuration; "
                "bcpctl approver enroll); give --operator NAME"
            ),
            operator=operator,
        )
    try:
        return prove(approvers, operator, secret, {"action": action, "role": "operator", **what}).details()
    except ApproverAuthFailed:
        raise ApprovalRefused(
            N_("the operator's secret does not match '{operator}'; nothing was recorded"), operator=operator
        ) from None


def _credential(approvers: Mapping[str, str], name: str) -> Credential | None:
    try:
        return credential_of(approvers, name)
    except ValueError:
        return None


def _holds(approvers: Mapping[str, str], name: str, secret: str) -> bool:
    credential = _credential(approvers, name)
    return credential is not None and holds(credential, secret)


def confirm_request(
    settings: FailoverSettings,
    approvers: Mapping[str, str],
    action: str,
    request: object,
    operator: str,
    what: Mapping[str, Any],
) -> Proof | None:
    """:func:`confirm` with ``confirmed``, the approver and the operator's proof taken from a request.

    ``operator`` (the OS account) is replaced by the request's ``operator`` when it names one.
    """
    return confirm(
        settings,
        approvers,
        action=action,
        yes=bool(getattr(request, "confirmed", False)),
        operator=getattr(request, "operator", None) or operator,
        approver=getattr(request, "approver", None),
        secret=getattr(request, "approver_secret", None),
        what=what,
        operator_secret=getattr(request, "operator_secret", None),
    )


def record_approval(engine: Engine, proof: Proof | None, run_id: str) -> None:
    """Put the signed approval into the audit chain under the run it allowed."""
    if proof is None:
        return
    action = f"{proof.statement.get('action')}.approved"
    audited(
        engine, lambda conn: append(conn, actor=proof.approver, action=action, subject=run_id, details=proof.details())
    )
