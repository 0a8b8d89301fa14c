"""``bcpctl export build``: an approved request → a signed, encrypted bundle from the replica.

Order matters: the request is checked against its audit chain (the specification hashed
when it was made and the approvals signed for it; never the row's status), then the keys are
loaded (a missing key fails before any resident data is touched), then the newest snapshot at
the site is restored privately, filtered by the decided columns and scope, written out,
sealed, and finally the build is audited. If the audit entry cannot be written the bundle is
removed: no bundle leaves without its record.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from dc.config import Consortium
from dc.errors import N_, UsageError
from victim_support import audit, csvformat, pfif, spreadsheet
from victim_support.bundle import seal, sha256
from victim_support.decisions import require_buildable
from victim_support.enrolment import with_enrolled
from victim_support.extract import collector_paused, extract
from victim_support.manifest import build_manifest, lag_text
from victim_support.pseudonym import Pseudonymizer, load_secret
from victim_support.replica import registry_snapshot
from victim_support.settings import ExportSettings, default_site, registry_system
from victim_support.signing import load_signing_key
from victim_support.store import count_build


@dataclass(frozen=True)
class BuildResult:
    request_id: str
    bundle: Path
    site: str
    snapshot_id: str
    as_of: datetime
    replication_lag: str
    #: ``None`` when the primary could not be reached.
    replication_lag_seconds: float | None
    expires_at: datetime
    rows: int
    excluded_protected: int
    cp932_lossy_rows: int | None
    files: dict[str, dict[str, Any]]
    payload_bytes: int
    audit_seq: int
    timings: dict[str, float] = field(default_factory=dict)


def build_export(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    request_id: str,
    out: Path,
    *,
    now: datetime,
    site: str | None = None,
    config_dir: Path | None = None,
    actor: str = "bcpctl",
) -> BuildResult:
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 3)
        clock = time.monotonic()

    config = with_enrolled(config, engine)
    request = require_buildable(engine, config, settings, request_id, now)
    site = site or default_site(config, settings)
    if site not in config.sites:
        raise UsageError(N_("unknown site '{site}' (known: {sites})"), site=site, sites=", ".join(config.sites))
    tenant, partner = config.tenants[request.tenant], config.partners.get(request.partner)
    if partner is None:
        raise UsageError(
            N_("partner '{partner}' is no longer in the configuration; nothing was built"), partner=request.partner
        )
    key = load_signing_key(settings, request.tenant, config_dir)
    pseudonymizer = Pseudonymizer(load_secret(settings, request.tenant, config_dir), partner.lg_code)
    system = registry_system(config, settings, request.tenant)
    with registry_snapshot(config, system, site, tenant_lg_code=tenant.lg_code, config_dir=config_dir) as (
        registry,
        source,
    ):
        lap("restore")
        data = extract(
            registry,
            columns=request.fields,
            scope=request.scope,
            disaster_id=request.disaster_id,
            pseudonymizer=pseudonymizer,
        )
    lap("extract")
    expires_at = now + timedelta(days=request.retention_days)
    with collector_paused():
        files, lossy, workbook, guarded = _files(
            request,
            data,
            tenant,
            partner,
            now=now,
            expires_at=expires_at,
            as_of=source.as_of,
            pfif_domain=settings.tenant(request.tenant).pfif_domain,
        )
    listing = {
        name: {"sha256": sha256(blob), "bytes": len(blob), "rows": len(data.rows) if name != "pfif.xml" else None}
        for name, blob in files
    }
    lap("format")
    manifest = build_manifest(
        request=request,
        tenant=tenant,
        partner=partner,
        source=source,
        built_at=now,
        expires_at=expires_at,
        columns=data.columns,
        rows=len(data.rows),
        excluded_protected=data.excluded_protected,
        areas=data.areas,
        files=listing,
        cp932_lossy_rows=lossy,
        private_use=csvformat.private_use_report(data.columns, data.rows),
        xlsx_replaced_rows=workbook.replaced_rows,
        xlsx_truncated_rows=workbook.truncated_rows,
        csv_formula_guarded_rows=guarded,
    )
    anchor_seq, anchor_hash = audit.head(engine)
    recipients = [partner.age_recipient]
    escrow = settings.tenant(request.tenant).escrow_recipient
    if escrow:
        recipients.append(escrow)
    sealed = seal(
        out,
        f"{tenant.lg_code}-{request.id}-{now:%Y%m%dT%H%M%SZ}",
        files=files,
        manifest=manifest,
        envelope={
            "request_id": request.id,
            "from": {"tenant": request.tenant, "name": tenant.name, "lg_code": tenant.lg_code},
            "to": {"partner": request.partner, "name": partner.name, "lg_code": partner.lg_code},
            "created_at": now.isoformat(),
            "expires_at": expires_at.isoformat(),
            "audit_anchor": {"seq": anchor_seq, "hash": anchor_hash},
        },
        recipients=recipients,
        key=key,
        created_at=now,
    )
    lap("seal")

    def record(conn: Connection) -> audit.AuditEntry:
        count_build(conn, request.id)
        return audit.append(
            conn,
            actor=actor,
            action="bundle.built",
            subject=request.id,
            details={
                "bundle": sealed.path.name,
                "payload_sha256": sealed.payload_sha256,
                "manifest_sha256": sealed.manifest_sha256,
                "site": site,
                "snapshot": source.snapshot_id[:16],
                "as_of": source.as_of.isoformat(),
                "replication_lag": lag_text(source.lag_seconds),
                "rows": len(data.rows),
                "excluded_protected": data.excluded_protected,
                "recipients": recipients,
                "expires_at": expires_at.isoformat(),
            },
        )

    try:
        entry = audit.audited(engine, record)
    except BaseException:
        shutil.rmtree(sealed.path, ignore_errors=True)  # no bundle without its audit record
        raise
    return BuildResult(
        request_id=request.id,
        bundle=sealed.path,
        site=site,
        snapshot_id=source.snapshot_id,
        as_of=source.as_of,
        replication_lag=lag_text(source.lag_seconds),
        replication_lag_seconds=source.lag_seconds,
        expires_at=expires_at,
        rows=len(data.rows),
        excluded_protected=data.excluded_protected,
        cp932_lossy_rows=None if lossy is None else len(lossy),
        files=listing,
        payload_bytes=sealed.payload_bytes,
        audit_seq=entry.seq,
        timings=timings,
    )


def _files(
    request: Any,
    data: Any,
    tenant: Any,
    partner: Any,
    *,
    now: datetime,
    expires_at: datetime,
    as_of: datetime,
    pfif_domain: str | None,
) -> tuple[list[tuple[str, bytes]], list[dict[str, object]] | None, spreadsheet.Spreadsheet, list[dict[str, object]]]:
    """The bundle's data files in the order the request asked for them, the CP932 lossy rows,
    the workbook (with the rows it could not hold as they are) and the rows whose values the
    CSV copies for Excel guard against being run as formulas."""
    master = csvformat.persons_csv(data.columns, data.rows)
    workbook = spreadsheet.persons_xlsx(
        data.columns,
        data.rows,
        spreadsheet.Context(
            basis=request.basis,
            purposes=tuple(request.purposes),
            from_name=tenant.name,
            to_name=partner.name,
            request_id=request.id,
            as_of=as_of,
            built_at=now,
            expires_at=expires_at,
            retention_days=request.retention_days,
        ),
    )
    for_excel = csvformat.excel_rows(data.columns, data.rows)
    files: list[tuple[str, bytes]] = [
        ("persons.csv", master),
        ("persons-excel.csv", csvformat.excel_copy(data.columns, for_excel.rows)),
        ("persons.xlsx", workbook.data),
    ]
    lossy = None
    if "cp932" in request.formats:
        copy = csvformat.cp932_copy(data.columns, for_excel.rows)
        files.append(("persons-cp932.csv", copy.data))
        lossy = copy.lossy_rows
    if "pfif" in request.formats:
        if pfif_domain is None:
            raise UsageError(
                N_("tenants.{tenant}.pfif_domain is not set: PFIF record ids need it"), tenant=request.tenant
            )
        document = pfif.pfif_document(
            data.columns,
            data.rows,
            domain=pfif_domain,
            author_name=tenant.name,
            entry_date=now,
            expiry_date=expires_at,
            source_date=as_of,
        )
        files.append(("pfif.xml", document))
    return files, lossy, workbook, for_excel.guarded_rows
