"""The checks a request passes when it is filed, against the newest replica: nothing fails after approval.

A request that officials approved and that then fails to build costs the approvers' time in
a disaster and teaches them to approve without reading. So filing restores the newest
snapshot at the export site (as a build does) and refuses, exit 2, a request that names a
町字 the registry does not have, or whose purpose needs the 被災者台帳 while its disaster id
matches no 台帳 entry in scope — unless the request states why (``ledger_waiver``; the
approvers then sign that reason with the rest of the specification). What the check found
(snapshot, rows a build would carry, protected rows it would drop, 台帳 entries) is written
with the request into the audit chain and shown to the approvers; an approval refuses a
request without that record (:func:`victim_support.decisions.decide`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from dc.auditentry import AuditEntry
from dc.config import Consortium
from dc.errors import N_
from victim_support.binding import CREATED
from victim_support.enrolment import with_enrolled
from victim_support.errors import PolicyRejected, RegistryError
from victim_support.extract import known_areas, unknown_areas
from victim_support.fields import expand
from victim_support.policy import NewRequest, Scope, excluded_row
from victim_support.replica import registry_snapshot
from victim_support.request import ExportRequest
from victim_support.schema import STATUS_RESIDENT, damage, residents
from victim_support.settings import ExportSettings, default_site, registry_system
from victim_support.store import create_request, judge, prepare, record_rejection

#: purposes that are about the 被災者台帳's own content (援護の実施の状況: who received aid)
LEDGER_PURPOSES = frozenset(("AID_DISTRIBUTION",))
#: columns that come only from the 台帳 entry of the request's disaster
LEDGER_FIELDS = frozenset(("damage_status", "certificate_status", "aid_status"))
#: how many known disaster ids a refusal names (enough to spot a typo)
_KNOWN_SHOWN = 5


@dataclass(frozen=True)
class Estimate:
    """What a build of the request would find in the snapshot checked at filing."""

    site: str
    snapshot: str
    as_of: datetime
    #: rows the build would carry (current residents in scope, row class applied, protected dropped)
    rows: int
    #: rows under 支援措置 or 抑止 that the build would drop (only counted)
    excluded_protected: int
    #: 町字 in scope
    areas: int
    #: whether the purposes or fields need the 台帳 entry of the disaster
    ledger_required: bool
    #: 台帳 entries of the disaster among the residents in scope
    ledger_entries: int

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "as_of": self.as_of.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Estimate:
        return cls(**{**data, "as_of": datetime.fromisoformat(data["as_of"])})


def ledger_required(purposes: Sequence[str], fields: Sequence[str]) -> bool:
    """A purpose or field that only the 被災者台帳 entry of the disaster can serve."""
    return bool(LEDGER_PURPOSES.intersection(purposes) or LEDGER_FIELDS.intersection(expand(tuple(fields))))


def ledger_reasons(
    *, required: bool, entries: int, waiver: str, disaster_id: str, known: Sequence[str], tenant: str
) -> list[str]:
    """Why the disaster id does not serve the request (empty: it does, it is not needed, or a reason is given)."""
    if not required or entries > 0 or waiver.strip():
        return []
    others = f" (its 台帳 knows: {', '.join(known)})" if known else " (its 台帳 has no entries)"
    return [
        f"disaster id '{disaster_id}' matches no 被災者台帳 entry of {tenant} in scope{others}; "
        "the purpose needs the 台帳 (damage, certificate and aid columns would be empty): "
        "correct the id, or state why with --no-ledger-reason"
    ]


def survey(registry: Engine, scope: Scope, disaster_id: str) -> tuple[list[str], int, int, int, int, list[str]]:
    """Unknown 町字, rows kept, protected rows, 町字 in scope, 台帳 entries in scope, known disaster ids."""
    try:
        pairs = known_areas(registry)
        unknown = unknown_areas(pairs, scope)
        chosen = [a for a, n in pairs if scope.all_areas or a in scope.areas or n in scope.areas]
        current = residents.c.status == STATUS_RESIDENT
        where = current if scope.all_areas else and_(current, residents.c.machiaza_id.in_(chosen))
        with registry.connect() as conn:
            groups = conn.execute(
                select(residents.c.shien_sochi, residents.c.yokushi, residents.c.yoshiensha, func.count())
                .where(where)
                .group_by(residents.c.shien_sochi, residents.c.yokushi, residents.c.yoshiensha)
            ).all()
            entries = conn.execute(
                select(func.count())
                .select_from(residents.join(damage, damage.c.atena_no == residents.c.atena_no))
                .where(where, damage.c.disaster_id == disaster_id)
            ).scalar_one()
            known = conn.execute(
                select(damage.c.disaster_id).distinct().order_by(damage.c.disaster_id).limit(_KNOWN_SHOWN)
            ).scalars()
            known_ids = [str(k) for k in known]
    except SQLAlchemyError as exc:
        raise RegistryError(N_("cannot read the restored registry: {exc}"), exc=str(exc).splitlines()[0]) from None
    kept = protected = 0
    for shien, yokushi, support, count in groups:
        if excluded_row(shien_sochi=bool(shien), yokushi=bool(yokushi)):
            protected += count
        elif support or not scope.support_only:
            kept += count
    return unknown, kept, protected, len(chosen), int(entries), known_ids


def check_filing(
    config: Consortium,
    settings: ExportSettings,
    new: NewRequest,
    *,
    config_dir: Path | None,
    site: str | None = None,
) -> Estimate:
    """Check ``new`` against the newest snapshot at the export site; refuse (exit 2) what cannot build."""
    site = site or default_site(config, settings)
    tenant = config.tenants[new.tenant]
    system = registry_system(config, settings, new.tenant)
    with registry_snapshot(config, system, site, tenant_lg_code=tenant.lg_code, config_dir=config_dir) as (
        registry,
        source,
    ):
        unknown, rows, protected, areas, entries, known = survey(registry, new.scope, new.disaster_id)
    reasons = []
    if unknown:
        reasons.append(
            f"町字 not in the registry of {tenant.name} (snapshot {source.snapshot_id[:8]} at {site}): "
            f"{', '.join(unknown[:5])} (use names or 7-digit 町字IDs)"
        )
    required = ledger_required(new.purposes, new.fields)
    reasons += ledger_reasons(
        required=required,
        entries=entries,
        waiver=new.ledger_waiver,
        disaster_id=new.disaster_id,
        known=known,
        tenant=tenant.name,
    )
    if reasons:
        raise PolicyRejected(N_("request rejected: {reasons_}"), tuple(reasons), reasons_=reasons[0])
    return Estimate(site, source.snapshot_id[:16], source.as_of, rows, protected, areas, required, entries)


def file_request(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    new: NewRequest,
    now: datetime,
    *,
    config_dir: Path | None,
    site: str | None = None,
) -> ExportRequest:
    """Judge ``new`` by the law tables, check it against the replica, then store it with its estimate.

    The law tables go first: a request they refuse never costs a restore. Every refusal is
    audited as ``request.rejected``, whichever check made it.
    """
    config = with_enrolled(config, engine)
    new = prepare(config, settings, new)
    if not judge(config, settings, new, now).allowed:
        return create_request(engine, config, settings, new, now)  # audits the rejection and raises
    unbuildable = settings_reasons(settings, new)
    if unbuildable:
        record_rejection(engine, new, unbuildable)
        raise PolicyRejected(N_("request rejected: {unbuildable}"), unbuildable, unbuildable=unbuildable[0])
    try:
        estimate = check_filing(config, settings, new, config_dir=config_dir, site=site)
    except PolicyRejected as exc:
        record_rejection(engine, new, exc.reasons or (str(exc),))
        raise
    return create_request(engine, config, settings, new, now, estimate=estimate.as_json())


def settings_reasons(settings: ExportSettings, new: NewRequest) -> tuple[str, ...]:
    """What the configuration lacks for a build of ``new`` (checked before any restore)."""
    if "pfif" in new.formats and settings.tenant(new.tenant).pfif_domain is None:
        return (
            f"a PFIF file needs tenants.{new.tenant}.pfif_domain (the home repository's domain "
            "for PFIF record ids); ask the operator, or leave out --format pfif",
        )
    return ()


def recorded_estimate(entries: Sequence[AuditEntry]) -> Estimate | None:
    """The estimate the audit chain recorded when the request was filed (``None``: filed unchecked)."""
    for entry in entries:
        if entry.action == CREATED:
            data = entry.parsed_details().get("estimate")
            if isinstance(data, dict):
                try:
                    return Estimate.from_json(data)
                except (TypeError, ValueError, KeyError):
                    return None
    return None
