"""A partner's export request, from the API or the portal form, into ``victim_support.store``.

The policy decision stays in ``victim_support.policy``; this adds what only the web knows:
the partner is the authenticated one (never a field of the body), and the 町字 must be ones
of the tenant's list the form offered. A rejection carries every reason, not just the first.
"""

from __future__ import annotations

from functools import cache

from bcpctl.web.context import WebContext
from bcpctl.web.models import SubmitRequest
from dc.errors import N_, UsageError
from victim_support.places import Machiaza, municipality
from victim_support.policy import Scope
from victim_support.prefiling import file_request
from victim_support.store import ExportRequest, NewRequest


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
        raise UsageError(
            N_("unknown tenant '{tenant}' (known: {tenants})"), tenant=tenant, tenants=", ".join(ctx.config.tenants)
        )
    known = {m.id for m in tenant_machiaza(ctx, tenant)} | {m.name for m in tenant_machiaza(ctx, tenant)}
    unknown = [area for area in areas if area not in known]
    if unknown:
        name = ctx.config.tenants[tenant].name
        raise UsageError(
            N_("'{unknown}' is not a 町字 of {name} (pick from the catalog's list)"), unknown=unknown[0], name=name
        )
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
        filed_by=f"partner:{partner}",
        ledger_waiver=body.ledger_waiver.strip(),
    )
    # The store evaluates the policy once, on the municipalities' (JST) calendar day, and its
    # rejection carries every reason: evaluating again here could disagree with it.
    return file_request(ctx.state, ctx.config, ctx.exports, new, ctx.now(), config_dir=ctx.config_dir)
