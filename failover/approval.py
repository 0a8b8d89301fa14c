"""Confirmation for failover and failback: ``--yes`` always, and a second person where configured.

Human prompts in a runbook need two-person approval (research §C.10). The configuration
lists approvers with the SHA-256 of each one's token (``drills.failover.approvers``); the
token itself is handed to the operator at the time — read from ``$BCPCTL_APPROVER_TOKEN``
or a file, never from the command line — and the approver must not be the operator. A
digest is not a secret, so the configuration file stays secret-free. Pure functions.
"""

from __future__ import annotations

import hashlib
import hmac

from failover.errors import ApprovalRefused, ConfirmationRequired
from failover.settings import FailoverSettings

APPROVER_TOKEN_ENV = "BCPCTL_APPROVER_TOKEN"


def token_digest(token: str) -> str:
    """What goes into ``drills.failover.approvers`` for a token: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def confirm(
    settings: FailoverSettings,
    *,
    action: str,
    yes: bool,
    operator: str,
    approver: str | None,
    token: str | None,
) -> str | None:
    """Return the approver's name when one was required; raise when confirmation is missing."""
    if not yes:
        raise ConfirmationRequired(f"{action} changes production at both sites: repeat with --yes to confirm")
    if not settings.two_person:
        return approver if approver in settings.approvers and token and _matches(settings, approver, token) else None
    if not approver:
        raise ApprovalRefused(f"{action} needs a second person: give --approver NAME and ${APPROVER_TOKEN_ENV}")
    if approver not in settings.approvers:
        raise ApprovalRefused(f"'{approver}' is not a configured approver (drills.failover.approvers)")
    if approver == operator:
        raise ApprovalRefused(f"the approver must be someone other than the operator ({operator})")
    if not token:
        raise ApprovalRefused(f"no approver token: set ${APPROVER_TOKEN_ENV} or pass --approver-token-file")
    if not _matches(settings, approver, token):
        raise ApprovalRefused(f"the token does not match approver '{approver}'")
    return approver


def confirm_request(settings: FailoverSettings, action: str, request: object, operator: str) -> str | None:
    """:func:`confirm` with ``confirmed``, ``approver`` and ``approver_token`` taken from a request."""
    return confirm(
        settings,
        action=action,
        yes=bool(getattr(request, "confirmed", False)),
        operator=operator,
        approver=getattr(request, "approver", None),
        token=getattr(request, "approver_token", None),
    )


def _matches(settings: FailoverSettings, approver: str | None, token: str) -> bool:
    expected = settings.approvers.get(approver or "")
    return expected is not None and hmac.compare_digest(expected, token_digest(token))
