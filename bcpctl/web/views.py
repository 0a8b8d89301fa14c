"""Export requests as the API and the pages show them, to partners and to operators."""

from __future__ import annotations

from typing import Any

from bcpctl.web.models import ApprovalView, DeliveryView, EstimateView, OperatorRequestView, RequestView, Scope
from victim_support.delivery import Delivery
from victim_support.store import ExportRequest


def _delivery(delivery: Delivery | None) -> DeliveryView | None:
    if delivery is None:
        return None
    return DeliveryView(
        built_at=delivery.built_at,
        expires_at=delivery.expires_at,
        downloads=delivery.downloads,
        deleted_at=delivery.deleted_at,
        deleted_by=delivery.deleted_by,
    )


def _common(request: ExportRequest, delivery: Delivery | None) -> dict[str, Any]:
    return {
        "id": request.id,
        "tenant": request.tenant,
        "partner": request.partner,
        "status": request.status,
        "basis": request.basis,
        "purposes": list(request.purposes),
        "requested_fields": list(request.requested_fields),
        "fields": list(request.fields),
        "scope": Scope(
            areas=list(request.scope.areas), all_areas=request.scope.all_areas, support_only=request.scope.support_only
        ),
        "retention_days": request.retention_days,
        "formats": list(request.formats),
        "requested_by": request.requested_by,
        "created_at": request.created_at,
        "valid_until": request.valid_until,
        "approvals": len(request.approvals),
        "required_approvals": request.required_approvals,
        "denial_reason": request.denial.split(": ", 1)[-1] if request.denial else None,
        "delivery": _delivery(delivery),
    }


def partner_view(request: ExportRequest, delivery: Delivery | None) -> RequestView:
    return RequestView(**_common(request, delivery))


def operator_view(request: ExportRequest, delivery: Delivery | None) -> OperatorRequestView:
    return OperatorRequestView(
        **_common(request, delivery),
        approved_by=[
            ApprovalView(approver=a.approver, role=a.role, at=a.at, reason=a.reason) for a in request.approvals
        ],
        denial=request.denial,
        builds=request.builds,
        estimate=None if request.estimate is None else EstimateView.model_validate(request.estimate),
        ledger_waiver=request.ledger_waiver,
    )
