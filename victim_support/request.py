"""An export request, and the canonical specification its approvals are bound to.

Everything that changes what a build exports — partner, tenant, disaster, basis, purposes,
fields, areas, row class, retention, formats, requester, validity — is in
:func:`specification`; its SHA-256 (:func:`spec_hash`) is written into the audit chain when
the request is made and signed by every approver. The row in the database is only a copy:
a build recomputes the hash from the row it is about to build and refuses any difference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from victim_support.approval import Approval
from victim_support.policy import NewRequest, Scope

#: bump when the specification's shape changes; old hashes then never match by accident.
SPEC_VERSION = 1


@dataclass(frozen=True)
class ExportRequest:
    id: str
    tenant: str
    partner: str
    disaster_id: str
    disaster_date: date
    basis: str
    purposes: tuple[str, ...]
    requested_fields: tuple[str, ...]
    fields: tuple[str, ...]
    scope: Scope
    retention_days: int
    formats: tuple[str, ...]
    requested_by: str
    created_at: datetime
    valid_until: datetime
    #: effective status at load time (pending, approved, denied, expired).
    status: str
    required_approvals: int
    approvals: tuple[Approval, ...] = ()
    denial: str | None = None
    builds: int = 0
    #: the status column as stored (``status`` turns it into "expired" past ``valid_until``).
    stored_status: str = ""
    #: why no 被災者台帳 entry of the disaster is needed, as the requester stated it ("" when not stated)
    ledger_waiver: str = ""
    #: what the check against the replica found at filing (:class:`victim_support.prefiling.Estimate` as JSON)
    estimate: dict[str, Any] | None = None


def as_asked(request: ExportRequest) -> NewRequest:
    """The stored request as its partner asked for it: what the law tables judge again before a build."""
    return NewRequest(
        partner=request.partner,
        tenant=request.tenant,
        disaster_id=request.disaster_id,
        disaster_date=request.disaster_date,
        basis=request.basis,
        purposes=request.purposes,
        fields=request.requested_fields,
        scope=request.scope,
        requested_by=request.requested_by,
        retention_days=request.retention_days,
        formats=request.formats,
        ledger_waiver=request.ledger_waiver,
    )


def specification(request: ExportRequest) -> dict[str, Any]:
    """The request's full specification as plain JSON values (times in UTC)."""
    return {
        "v": SPEC_VERSION,
        "id": request.id,
        "tenant": request.tenant,
        "partner": request.partner,
        "disaster_id": request.disaster_id,
        "disaster_date": request.disaster_date.isoformat(),
        "basis": request.basis,
        "purposes": list(request.purposes),
        "requested_fields": list(request.requested_fields),
        "fields": list(request.fields),
        "areas": list(request.scope.areas),
        "all_areas": request.scope.all_areas,
        "support_only": request.scope.support_only,
        "retention_days": request.retention_days,
        "formats": list(request.formats),
        "requested_by": request.requested_by,
        "created_at": request.created_at.astimezone(UTC).isoformat(),
        "valid_until": request.valid_until.astimezone(UTC).isoformat(),
        # only when stated: a request without one keeps the hash it was approved under
        **({"ledger_waiver": request.ledger_waiver} if request.ledger_waiver else {}),
    }


def spec_hash(spec: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a specification (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def spec_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed, key by key: ``fields: +phone`` for lists, ``key: recorded -> current`` otherwise."""
    found = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            change = [f"+{_short(v)}" for v in new if v not in old] + [f"-{_short(v)}" for v in old if v not in new]
            found.append(f"{key}: {' '.join(change) or 'reordered'}")
        else:
            found.append(f"{key}: {_short(old)} -> {_short(new)}")
    return found


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
