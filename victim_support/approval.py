"""Approval rules: who may approve, how many must, and when a request stops being usable.

Pure functions (``now`` is passed in). A basis can require several distinct approvers (the
two-person rule); an alternate approver — typically the prefecture, which may act for a
municipality that cannot function (災対法施行令36条の2-style substitution) — counts like a
tenant approver but must say why the tenant cannot act, and that reason is audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dc.errors import N_
from victim_support.errors import PolicyRejected, RequestStateError
from victim_support.settings import ExportSettings

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"

TENANT_ROLE = "tenant"
ALTERNATE_ROLE = "alternate"


@dataclass(frozen=True)
class Approval:
    approver: str
    role: str
    at: datetime
    reason: str = ""


def approver_role(settings: ExportSettings, tenant_id: str, approver: str) -> str | None:
    """``tenant`` or ``alternate`` for a configured approver of this tenant, else ``None``."""
    tenant = settings.tenant(tenant_id)
    if approver in tenant.approvers:
        return TENANT_ROLE
    if approver in tenant.alternate_approvers or approver in settings.alternate_approvers:
        return ALTERNATE_ROLE
    return None


def unenrolled(settings: ExportSettings, tenant_id: str, credentials: Mapping[str, str]) -> list[str]:
    """The tenant's own approvers who have no credential yet.

    A town that joined late (後乗り) is named with its approvers before they enrol; until every
    one of them has, nobody — an alternate included — approves an export of its residents, so
    its list is never released on the word of people the town has not yet confirmed.
    """
    return [name for name in settings.tenant(tenant_id).approvers if name not in credentials]


def effective_status(stored: str, valid_until: datetime, now: datetime) -> str:
    """A pending or approved request past its validity is expired: it can be neither approved nor built."""
    if stored in (PENDING, APPROVED) and now >= valid_until:
        return EXPIRED
    return stored


def check_decision(
    *,
    status: str,
    tenant_id: str,
    approvals: list[Approval],
    approver: str,
    requested_by: str,
    reason: str,
    settings: ExportSettings,
    waiting: Sequence[str] = (),
) -> str:
    """Refuse an approval or denial the rules forbid; return the approver's role.

    ``waiting``: the tenant's approvers not yet enrolled (:func:`unenrolled`); any refuses approval.
    """
    if status != PENDING:
        raise RequestStateError(
            N_("the request is {status}; only a pending request can be approved or denied"), status=status
        )
    if waiting:
        raise PolicyRejected(
            N_(
                "no export of {tenant_id} can be approved until its approvers are enrolled ({waiting}): "
                "each runs 'bcpctl approver enroll' and the confirmed credential goes under approvers:"
            ),
            tenant_id=tenant_id,
            waiting=", ".join(waiting),
        )
    role = approver_role(settings, tenant_id, approver)
    if role is None:
        raise PolicyRejected(
            N_(
                "'{approver}' is not an approver for {tenant_id} (exports.tenants.{tenant_id}.approvers or "
                "exports.alternate_approvers)"
            ),
            approver=approver,
            tenant_id=tenant_id,
        )
    if approver == requested_by:
        raise PolicyRejected(N_("the requester cannot approve or deny their own request"))
    if any(a.approver == approver for a in approvals):
        raise PolicyRejected(
            N_("'{approver}' has already approved this request; another person must approve"), approver=approver
        )
    if role == ALTERNATE_ROLE and not reason.strip():
        raise PolicyRejected(N_("an alternate approver must give --reason (why the municipality cannot act)"))
    return role


def quorum_reached(approvals: list[Approval], required: int) -> bool:
    return len({a.approver for a in approvals}) >= required
