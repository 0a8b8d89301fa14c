"""``bcpctl drill run --mode export``: rehearse the export path with nobody real in it.

A rehearsal must exercise what a real export does — read the newest replica, extract,
format, sign, encrypt to the partner, open on the partner's side — and must never ship a
real person. So it restores the replica only to learn the tenant's shape (how many current
residents live in each 町字, born in which year, of which sex), generates that many
synthetic residents into a private registry (names drawn from the synthetic name tables,
redrawn whenever name and date of birth would equal a real resident's; identifiers that are
no one's), and runs the whole export path on those: the request (checked by the same
policy), its approvals (by the rehearsal approval rule of :mod:`victim_support.rehearsal`),
the build, the delivery into the partner's inbox, the opening with the partner's identity,
a signed PFIF note returned and the partner's signed deletion statement. 訓練 is in the
bundle's name, in every file name, in the envelope and manifest, the note and the statement,
and in the audit entry. The run is recorded in ``drill_runs`` like every drill, each step a
check with its seconds; the time from start to the delivered bundle is the export's RTO.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

from dc.clock import jst_day
from dc.config import Consortium
from dc.errors import N_, BcpError, Message, UsageError
from failover.lifecycle import new_run_id
from failover.records import start_run
from failover.results import CleanupResult, RunResult
from victim_support import audit, csvformat
from victim_support.bundle import DRILL_PREFIX, open_bundle, seal, sha256
from victim_support.enrolment import with_enrolled
from victim_support.extract import extract
from victim_support.fields import FIELDS as LABELS
from victim_support.names import GIVEN_NAMES, SURNAMES, era
from victim_support.policy import NewRequest, Scope
from victim_support.pseudonym import Pseudonymizer, load_secret
from victim_support.rehearsal import (
    TRAINING,
    PartnerSide,
    Steps,
    confirm_deletion,
    deliver,
    finish,
    partner_side,
    rehearse_approvals,
    return_note,
)
from victim_support.replica import registry_snapshot
from victim_support.schema import STATUS_RESIDENT, create_registry, open_registry, registry_info, residents
from victim_support.settings import ExportSettings, default_site, registry_system
from victim_support.signing import load_signing_key
from victim_support.store import judge

BASIS = "APPI-69-2-3"
PURPOSES = ("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION")
FIELDS = ("name", "name_kana", "birth_date", "sex", "address")
#: redraws before a synthetic name+birth date that equals a real one gives up (never reached in practice)
_REDRAWS = 50


@dataclass(frozen=True)
class ExportDrillResult:
    #: the drill run's id in ``drill_runs`` (``drill report ID``)
    run_id: str
    status: str
    tenant: str
    partner: str
    bundle: Path
    rows: int
    areas: int
    #: seconds from the start to the bundle delivered into the partner's inbox: the export's RTO in a rehearsal
    time_to_deliver: float
    #: whether the bundle was opened with the partner's identity (``None``: no identity given)
    opened: bool | None
    files: list[str]
    #: seconds per step: request, approvals, build, delivery, open, note, deletion
    steps: dict[str, float]
    approvals: int
    #: the PFIF note the partner returned, and who signed the deletion statement
    note: str
    deleted_by: str
    #: whether the partner's side signed with its registered key (else a key made for the run)
    partner_key_registered: bool
    audit_seq: int


def _shape(registry: Engine) -> tuple[list[tuple[str, str, str, str, int]], set[tuple[str, str, str]], dict[str, str]]:
    """Per current resident (町字ID, 町字, 郵便番号, 性別, birth year); the real (氏, 名, 生年月日); registry info."""
    with registry.connect() as conn:
        rows = conn.execute(
            select(
                residents.c.machiaza_id,
                residents.c.machiaza_name,
                residents.c.postal_code,
                residents.c.sex,
                residents.c.birth_date,
                residents.c.family_name,
                residents.c.given_name,
            ).where(residents.c.status == STATUS_RESIDENT)
        ).all()
        info = dict(conn.execute(select(registry_info.c.key, registry_info.c.value)).all())
    shape = [(str(a), str(n), str(p), str(s), _year(b)) for a, n, p, s, b, _f, _g in rows]
    real = {(str(f), str(g), str(b)) for _a, _n, _p, _s, b, f, g in rows}
    return shape, real, info


def _year(value: object) -> int:
    return value.year if isinstance(value, date) else int(str(value)[:4])


def synthetic_rows(
    shape: list[tuple[str, str, str, str, int]], real: set[tuple[str, str, str]], seed: str
) -> list[dict[str, object]]:
    """One synthetic resident per shape entry; never a real (氏, 名, 生年月日)."""
    rng = random.Random(seed)
    out = []
    for n, (area_id, area_name, postal, sex, year) in enumerate(sorted(shape)):
        for _ in range(_REDRAWS):
            born = date(year, rng.randint(1, 12), rng.randint(1, 28))
            family, family_kana = rng.choice(SURNAMES)
            given, given_kana = rng.choice(GIVEN_NAMES[sex if sex in "12" else "2"][era(born.year)])
            if (family, given, born.isoformat()) not in real:
                break
        else:
            raise UsageError(N_("could not draw a synthetic name unlike every real resident's"))
        out.append(
            {
                "atena_no": f"T{n:014d}",
                "setai_no": f"T{n:014d}",
                "family_name": family,
                "given_name": given,
                "family_name_kana": family_kana,
                "given_name_kana": given_kana,
                "kana_verified": False,
                "birth_date": born,
                "sex": sex,
                "relationship": "世帯主",
                "machiaza_id": area_id,
                "machiaza_name": area_name,
                "banchi": f"{TRAINING}{rng.randint(1, 999)}",
                "katagaki": "",
                "postal_code": postal,
                "resident_since": born,
                "status": STATUS_RESIDENT,
                "shien_sochi": False,
                "yokushi": False,
                "yoshiensha": False,
                "support_reason_code": "",
                "phone": "",
                "kojin_bango": "000000000000",
                "juminhyo_code": "00000000000",
                "honseki": "",
                "kokuho_no": "",
                "kiso_nenkin_no": "",
            }
        )
    return out


def run_export_drill(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    *,
    tenant_id: str,
    partner_id: str,
    out: Path,
    now: datetime,
    actor: str,
    config_dir: Path | None,
    site: str | None = None,
    partner_identity: Path | None = None,
    partner_signing_key: Path | None = None,
) -> ExportDrillResult:
    """Rehearse the export of ``tenant_id`` to ``partner_id`` on synthetic residents shaped like the real ones.

    Recorded in ``drill_runs`` like every drill (``drill list``, ``drill report``), failed runs too.
    """
    config = with_enrolled(config, engine)
    if tenant_id not in config.tenants:
        raise UsageError(
            N_("unknown tenant '{tenant_id}' (known: {tenants})"),
            tenant_id=tenant_id,
            tenants=", ".join(config.tenants),
        )
    if partner_id not in config.partners:
        raise UsageError(
            N_("unknown partner '{partner_id}' (known: {partners})"),
            partner_id=partner_id,
            partners=", ".join(config.partners) or Message(N_("none")),
        )
    site = site or default_site(config, settings)
    side = partner_side(partner_signing_key, config.partners[partner_id].verify_key)
    run_id, _token = new_run_id(now)
    start_run(engine, run_id, kind="drill", mode="export", consortium=config.consortium, site=site,
              declared_at=now, deadline=None, operator=actor, tenant=tenant_id)  # fmt: skip
    run = RunResult(run_id, "drill", "export", config.consortium, site, now, tenant=tenant_id, operator=actor)
    steps = Steps(time.monotonic())
    try:
        result = _rehearse(engine, config, settings, tenant_id, partner_id, out, now, actor, config_dir, site,
                           partner_identity, side, run, steps)  # fmt: skip
    except BcpError as exc:
        run.error = str(exc)
        finish(engine, run, tenant_id, steps, None)
        raise
    return result


def _rehearse(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    tenant_id: str,
    partner_id: str,
    out: Path,
    now: datetime,
    actor: str,
    config_dir: Path | None,
    site: str,
    partner_identity: Path | None,
    side: PartnerSide,
    run: RunResult,
    steps: Steps,
) -> ExportDrillResult:
    tenant, partner = config.tenants[tenant_id], config.partners[partner_id]
    request_id = f"{TRAINING}-{now:%Y%m%dT%H%M%S}"
    # judged like every filing, on the municipalities' calendar day: between 00:00 and 09:00 JST
    # UTC still says yesterday, and the rehearsal's disaster is today's
    request = NewRequest(partner_id, tenant_id, TRAINING, jst_day(now), BASIS, PURPOSES, FIELDS,
                         Scope(all_areas=True), TRAINING, retention_days=1)  # fmt: skip
    decision = judge(config, settings, request, now)
    if not decision.allowed:
        raise UsageError(N_("the rehearsal's request is refused: {reasons}"), reasons=decision.reasons[0])
    steps.done(
        "request",
        Message(
            N_("{request_id}: disaster of {date}, {basis}, {fields}"),
            request_id=request_id,
            date=request.disaster_date,
            basis=BASIS,
            fields=", ".join(decision.fields),
        ),
    )
    required = settings.required_approvals(BASIS)
    approvals = rehearse_approvals(required, {"request": request_id, "run": run.id, "basis": BASIS}, now)
    steps.done(
        "approvals",
        Message(
            N_("{count} of {required} by the rehearsal approval rule (throwaway credentials)"),
            count=len(approvals),
            required=required,
        ),
    )
    key = load_signing_key(settings, tenant_id, config_dir)
    pseudonymizer = Pseudonymizer(load_secret(settings, tenant_id, config_dir), partner.lg_code)
    system = registry_system(config, settings, tenant_id)
    with registry_snapshot(config, system, site, tenant_lg_code=tenant.lg_code, config_dir=config_dir) as (
        real,
        source,
    ):
        shape, real_names, info = _shape(real)
    work = Path(tempfile.mkdtemp(prefix="bcpctl-export-drill-"))
    try:
        registry = open_registry(str(work / f"{TRAINING}.sqlite"))
        create_registry(registry)
        with registry.begin() as conn:
            conn.execute(
                insert(registry_info), [{"key": k, "value": v} for k, v in {**info, "drill": TRAINING}.items()]
            )
            conn.execute(insert(residents), synthetic_rows(shape, real_names, f"{tenant_id}:{now.isoformat()}"))
        data = extract(
            registry,
            columns=decision.fields,
            scope=Scope(all_areas=True),
            disaster_id=TRAINING,
            pseudonymizer=pseudonymizer,
        )
        registry.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    master = csvformat.persons_csv(data.columns, data.rows)
    for_excel = csvformat.excel_rows(data.columns, data.rows)
    files = [
        (f"{DRILL_PREFIX}persons.csv", master),
        (f"{DRILL_PREFIX}persons-excel.csv", csvformat.excel_copy(data.columns, for_excel.rows)),
    ]
    expires = now + timedelta(days=1)
    manifest = {
        "drill": TRAINING,
        "tenant": {"id": tenant_id, "name": tenant.name, "lg_code": tenant.lg_code},
        "partner": {"id": partner_id, "name": partner.name, "lg_code": partner.lg_code},
        "shape_from": {"site": site, "snapshot": source.snapshot_id[:16], "as_of": source.as_of.isoformat()},
        "columns": list(data.columns),
        "rows": len(data.rows),
        "files": {name: {"sha256": sha256(blob), "bytes": len(blob)} for name, blob in files},
    }
    sealed = seal(
        out,
        f"{TRAINING}-{tenant.lg_code}-{now:%Y%m%dT%H%M%SZ}",
        files=files,
        manifest=manifest,
        envelope={
            "drill": TRAINING,
            "request_id": request_id,
            "from": {"tenant": tenant_id, "name": tenant.name, "lg_code": tenant.lg_code},
            "to": {"partner": partner_id, "name": partner.name, "lg_code": partner.lg_code},
            "created_at": now.isoformat(),
            "expires_at": expires.isoformat(),
        },
        recipients=[partner.age_recipient],
        key=key,
        created_at=now,
    )
    steps.done(
        "build",
        Message(
            N_("{rows} synthetic rows shaped like snapshot {snapshot}"),
            rows=len(data.rows),
            snapshot=source.snapshot_id[:8],
        ),
    )
    delivered_copy = deliver(sealed.path, out / f"{TRAINING}-delivered")
    steps.done("delivery", str(delivered_copy))
    delivered = steps.elapsed()
    opened_dir = out / f"{TRAINING}-opened"
    copies = [delivered_copy.parent]
    refs = {str(row[data.columns.index("person_ref")]) for row in data.rows}
    opened = None
    if partner_identity is not None:
        copies.append(opened_dir)
        open_bundle(delivered_copy, partner_identity, key.public_key(), opened_dir, now)
        opened = True
        label = LABELS["person_ref"]
        text = (opened_dir / files[0][0]).read_text("utf-8")
        refs = {row[label] for row in csv.DictReader(io.StringIO(text, newline=""))}
        steps.done("open", Message(N_("opened with the partner's age identity")))
    else:
        run.warnings.append(Message(N_("not opened on the partner's side: no --partner-identity")))
        steps.done("open", Message(N_("skipped: no --partner-identity")))
    domain = settings.tenant(tenant_id).pfif_domain or f"{tenant_id}.drill.invalid"
    note = return_note(
        side, partner_id=partner_id, partner_name=partner.name, person_record_id=f"{domain}/{min(refs)}", refs=refs,
        now=now,
    )  # fmt: skip
    signer = Message(N_("the partner's registered key")) if side.registered else Message(N_("a key made for this run"))
    steps.done(
        "note",
        Message(
            N_("{note} about {person}, signed with {signer}"),
            note=note.note_record_id,
            person=note.person_record_id,
            signer=signer,
        ),
    )
    deleted_by = confirm_deletion(
        side, request_id=request_id, partner_id=partner_id, partner_name=partner.name, copies=copies
    )
    steps.done(
        "deletion", Message(N_("confirmed by {deleted_by}, signed with {signer}"), deleted_by=deleted_by, signer=signer)
    )
    run.cleanup = CleanupResult(removed=[str(c) for c in copies])
    finish(engine, run, tenant_id, steps, delivered)
    entry = audit.audited(
        engine,
        lambda conn: audit.append(
            conn,
            actor=actor,
            action="drill.export",
            subject=f"{TRAINING}:{tenant_id}->{partner_id}",
            details={
                "drill": TRAINING,
                "run": run.id,
                "disaster_date": request.disaster_date.isoformat(),
                "bundle": sealed.path.name,
                "rows": len(data.rows),
                "time_to_deliver_seconds": delivered,
                "opened": opened,
                "approvals": approvals,
                "note": note.note_record_id,
                "deleted_by": deleted_by,
                "snapshot": source.snapshot_id[:16],
            },
        ),
    )
    return ExportDrillResult(
        run_id=run.id,
        status=run.status,
        tenant=tenant_id,
        partner=partner_id,
        bundle=sealed.path,
        rows=len(data.rows),
        areas=len({s[0] for s in shape}),
        time_to_deliver=delivered,
        opened=opened,
        files=[name for name, _ in files],
        steps=dict(steps.seconds),
        approvals=len(approvals),
        note=note.note_record_id,
        deleted_by=deleted_by,
        partner_key_registered=side.registered,
        audit_seq=entry.seq,
    )
