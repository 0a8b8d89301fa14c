"""Step 6 of the story: つくば市 receives the evacuee list of 常陸大宮市, and opens it.

The request, the approval, the build and the opening are the same core functions the
``bcpctl export`` commands and the partner portal call. The partner's side is proven twice:
with bcpctl (signature, expiry, recipient checked, receipt audited) and, when the ``age``
command is installed, with nothing but ``age`` and ``tar`` — a sheltering city may not run
bcpctl at all.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bcpctl.demo.consortium import DISASTER_ID, EXPORT_APPROVERS, PARTNER, KeyMaterial
from dc.config import Consortium
from dc.errors import N_, BcpError
from victim_support.bundle import PAYLOAD

#: the story's affected town
AFFECTED_TENANT = "hitachiomiya"


def affected_areas(registry: Path, count: int = 2) -> tuple[str, ...]:
    """The 町字 hit hardest: most 避難行動要支援者 who may be listed (no 支援措置 or 抑止)."""
    conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT machiaza_name FROM residents WHERE yoshiensha AND NOT shien_sochi AND NOT yokushi "
            "GROUP BY machiaza_name ORDER BY count(*) DESC, machiaza_name LIMIT ?",
            (count,),
        ).fetchall()
    finally:
        conn.close()
    return tuple(name for (name,) in rows)


class StepFailed(BcpError):
    """A step ran but its own verification failed."""


def export_to_partner(
    config: Consortium,
    config_path: Path,
    state: Any,
    keys: KeyMaterial,
    areas: tuple[str, ...],
    disaster_at: datetime,
    workdir: Path,
) -> dict[str, Any]:
    """Request (DMA-49-11-3, 要支援者 of two 町字), approve, build from the replica, open, audit."""
    from dc.approvers import credential_of
    from dc.secrets import read_secret_file
    from victim_support.build import build_export
    from victim_support.decisions import decide
    from victim_support.integrity import verify_control_state
    from victim_support.policy import Scope
    from victim_support.prefiling import file_request
    from victim_support.receipt import open_and_record
    from victim_support.settings import load_export_settings
    from victim_support.store import NewRequest

    settings = load_export_settings(config, str(config_path))
    now = datetime.now(UTC)
    request = file_request(
        state,
        config,
        settings,
        NewRequest(
            partner=PARTNER,
            tenant=AFFECTED_TENANT,
            disaster_id=DISASTER_ID,
            disaster_date=(disaster_at + timedelta(hours=9)).date(),  # JST
            basis="DMA-49-11-3",
            purposes=("SAFETY_CONFIRMATION", "EVACUEE_IDENTIFICATION"),
            fields=("name", "name_kana", "birth_date", "sex", "address", "phone"),
            scope=Scope(areas, False, True),
            requested_by="つくば市 危機管理課 山田",
            formats=("cp932",),
        ),
        now,
        config_dir=config_path.parent,
    )
    approver = f"{AFFECTED_TENANT}-{EXPORT_APPROVERS[0]}"
    secret = read_secret_file(keys.approver_secrets[approver], "approver secret")
    approved = decide(
        state, config, settings, request.id, approver=approver, secret=secret, approve=True, reason="", now=now
    )
    if approved.status != "approved":
        raise StepFailed(N_("request {id} is {status} after approval"), id=request.id, status=approved.status)
    built = build_export(
        state,
        config,
        settings,
        request.id,
        workdir / "offsite" / "export" / "outbox",
        now=datetime.now(UTC),
        config_dir=config_path.parent,
        actor="demo-operator",
    )
    verify_key = keys.tenants[AFFECTED_TENANT][2]
    received = workdir / "partner" / "received"
    opened = open_and_record(
        state,
        built.bundle,
        keys.partner_identity,
        verify_key,
        received,
        now=datetime.now(UTC),
        actor=f"{PARTNER}-official",
    )
    by_age = open_bundle_with_age_cli(built.bundle, keys.partner_identity, workdir / "partner" / "age")
    chain = verify_control_state(state, None, datetime.now(UTC), config=config, settings=settings)
    export = {
        "request": request.id,
        "partner": PARTNER,
        "tenant": AFFECTED_TENANT,
        "basis": "DMA-49-11-3",
        "areas": list(areas),
        "rows": built.rows,
        "excluded_rows": built.excluded_protected,
        "cp932_lossy_rows": built.cp932_lossy_rows,
        "files": sorted(opened.files),
        "bundle": str(built.bundle),
        "site": built.site,
        "as_of": built.as_of.isoformat(timespec="seconds"),
        "replication_lag": built.replication_lag,
        "opened_by_partner": bool(opened.files),
        "opened_with_age_cli": by_age,
        "approved_by": [
            {"approver": a.approver, "credential": credential.id if credential else None}
            for a in approved.approvals
            for credential in [credential_of(config.approvers, a.approver)]
        ],
        "audit_ok": chain.ok,
        "audit_entries": chain.entries,
        "requests_match_chain": not chain.requests,
    }
    if not (built.rows > 0 and opened.files and chain.ok and not chain.requests and by_age is not False):
        raise StepFailed(N_("export check failed: {export}"), export=export)
    return export


def find_and_answer(
    config: Consortium, config_path: Path, state: Any, keys: KeyMaterial, workdir: Path
) -> dict[str, Any]:
    """つくば市 finds one evacuee by name and date of birth, and tells 常陸大宮市 where they are (a signed note).

    The person in front of the shelter official gives their name in hiragana for the family
    name and kanji for the given name; the lookup (pre-authorised for the declared disaster)
    finds them in the offsite replica, and the signed PFIF note puts them in a shelter in
    the home town's 被災者台帳 view.
    """
    import csv

    from victim_support.lookup import lookup_evacuee
    from victim_support.lookuprules import LookupQuery
    from victim_support.notes import NAMESPACE, receive_notes, whereabouts
    from victim_support.pfifnote import Note, notes_document
    from victim_support.settings import load_export_settings
    from victim_support.signing import parse_private_key, sign

    settings = load_export_settings(config, str(config_path))
    inbox = workdir / "partner" / "received"
    # the CSV's header row is Japanese labels; the manifest keeps the field keys in column order
    fields = [field["key"] for field in json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))["fields"]]
    with (inbox / "persons.csv").open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        next(rows)
        person = dict(zip(fields, next(rows), strict=True))
    given = person["name"].partition("\u3000")[2]
    family_kana = person["name_kana"].partition("\u3000")[0]
    hiragana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in family_kana)
    now = datetime.now(UTC)
    answer = lookup_evacuee(
        state,
        config,
        settings,
        LookupQuery(
            partner=PARTNER,
            tenant=AFFECTED_TENANT,
            disaster_id=DISASTER_ID,
            family=hiragana,
            given=given,
            birth_date=datetime.strptime(person["birth_date"], "%Y-%m-%d").date(),
            machiaza=None,
            official="つくば市 避難所 受付",
            filed_by=f"partner:{PARTNER}",
        ),
        now=now,
        config_dir=config_path.parent,
    )
    if len(answer.candidates) != 1:
        raise StepFailed(
            N_("the lookup of one evacuee found {n_candidates} candidates"), n_candidates=len(answer.candidates)
        )
    found = answer.candidates[0]
    domain = settings.tenant(AFFECTED_TENANT).pfif_domain
    shelter = "つくば市立竹園東小学校 (指定避難所)"
    note = Note(
        f"tsukuba.lg.jp.invalid/note-{answer.id}",
        f"{domain}/{found['person_ref']}",
        "つくば市 避難所 受付",
        now.replace(microsecond=0),
        "本人と面会。けがなし。避難所に滞在中。",
        author_made_contact=True,
        status="is_note_author",
        last_known_location=shelter,
    )
    document = notes_document([note])
    key = parse_private_key(keys.partner_signing_key.read_bytes(), str(keys.partner_signing_key))
    received = receive_notes(
        state,
        config,
        settings,
        partner=PARTNER,
        document=document,
        signature=sign(key, document, NAMESPACE),
        now=now,
        via="demo",
    )
    seen = [w for w in whereabouts(state, AFFECTED_TENANT) if w.person_ref == found["person_ref"]]
    if received.stored != 1 or not seen or seen[0].shelter != shelter:
        raise StepFailed(N_("the note from つくば市 did not reach 常陸大宮市's 被災者台帳 view"))
    return {
        "lookup": answer.id,
        "asked_as": f"{hiragana} {given}",
        "found": found.get("name", ""),
        "answer_seconds": answer.answer_seconds,
        "columns": list(answer.columns),
        "note": note.note_record_id,
        "shelter": seen[0].shelter,
        "said_by": seen[0].said_by,
    }


def open_bundle_with_age_cli(bundle: Path, identity: Path, out: Path) -> bool | None:
    """Decrypt the payload with ``age`` and unpack it into ``out``; ``None`` when age is not installed."""
    age = shutil.which("age")
    if age is None:
        return None
    done = subprocess.run(
        [age, "--decrypt", "--identity", str(identity), str(bundle / PAYLOAD)], capture_output=True, timeout=120
    )
    if done.returncode != 0:
        return False
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        names = tar.getnames()
        tar.extractall(out, filter="data")
    return "manifest.json" in names and any(name.endswith(".csv") for name in names)
