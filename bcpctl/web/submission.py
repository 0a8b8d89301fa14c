"""A partner's export request, from the API or the portal form, into ``victim_support.store``.

The policy decision stays in ``victim_support.policy``; this adds what only the web knows:
the partner is the authenticated one (never a field of the body), and the 町字 must be ones
of the tenant's list the form offered. A rejection carries every reason, not just the first.
"""

from __future__ import annotations

from functools import cache

from bcpctl.web.context import WebContext
from bcpctl.web.models import SubmitRequest
from dc.errors import UsageError
from victim_support.errors import PolicyRejected
from victim_support.places import Machiaza, municipality
from victim_support.policy import RequestSpec, Scope, evaluate
from victim_support.store import ExportRequest, NewRequest, create_request


@cache
def _machiaza(lg_code: str, name: str) -> tuple[Machiaza, ...]:
    return municipality(lg_code, name).machiaza


def tenant_machiaza(ctx: WebContext, tenant_id: str) -> tuple[Machiaza, ...]:
    """The tenant's 町字 list the form offers (the same one its registry is built on)."""
    tenant = ctx.config.tenants[tenant_id]
    return _machiaza(tenant.lg_code, tenant.name)


def submit(ctx: WebContext, partner: str, body: SubmitRequest) -> ExportRequest:
    """File ``body`` for the authenticated ``partner`` (from the API or the portal form)."""
    tenant, areas = body.tenant, tuple(body.areas)
    if tenant not in ctx.config.tenants:
        raise UsageError(f"unknown tenant '{tenant}' (known: {', '.join(ctx.config.tenants)})")
    known = {m.id for m in tenant_machiaza(ctx, tenant)} | {m.name for m in tenant_machiaza(ctx, tenant)}
    unknown = [area for area in areas if area not in known]
    if unknown:
        name = ctx.config.tenants[tenant].name
        raise UsageError(f"'{unknown[0]}' is not a 町字 of {name} (pick from the catalog's list)")
    scope = Scope(tuple(dict.fromkeys(areas)), body.all_areas, body.support_only)
    new = NewRequest(
        partner=partner,
        tenant=tenant,
        disaster_id=body.disaster_id.strip(),
        disaster_date=body.disaster_date,
        basis=body.basis,
        purposes=tuple(dict.fromkeys(body.purposes)),
        fields=tuple(dict.fromkeys(body.fields)),
        scope=scope,
        requested_by=body.requested_by.strip(),
        retention_days=body.retention_days,
        formats=tuple(dict.fromkeys(body.formats)),
    )
    try:
        return create_request(ctx.state, ctx.config, ctx.exports, new, ctx.now())
    except PolicyRejected as exc:
        exc.reasons = _reasons(ctx, new)  # type: ignore[attr-defined]
        raise


def _reasons(ctx: WebContext, new: NewRequest) -> tuple[str, ...]:
    spec = RequestSpec(
        partner_lg_code=ctx.config.partners[new.partner].lg_code,
        tenant_lg_code=ctx.config.tenants[new.tenant].lg_code,
        disaster_id=new.disaster_id,
        disaster_date=new.disaster_date,
        basis=new.basis,
        purposes=new.purposes,
        fields=new.fields,
        scope=new.scope,
        retention_days=new.retention_days if new.retention_days is not None else ctx.exports.retention_days,
        formats=new.formats,
    )
    return evaluate(spec, today=ctx.now().date(), max_retention_days=ctx.exports.max_retention_days).reasons
