"""The return loop: a sheltering partner sends back what it learned, as signed PFIF 1.4 notes.

A partner that received a list (or answered a lookup) knows where people are: "本人と面会、
竹園東小学校に避難". It returns that as PFIF 1.4 notes (:mod:`victim_support.pfifnote`)
about the ``person_record_id``s our files gave it, signed with its registered key
(``partners.<id>.verify_key``, SSHSIG namespace ``bcpctl-pfif-notes``)::

    ssh-keygen -Y sign -n bcpctl-pfif-notes -f tsukuba-request.key notes.xml

An unsigned or forged document is refused (exit 3) and nothing is stored, and so is one about
a town the partner received nobody of (no built list, no lookup that found someone). Every note is
kept — the home town's 被災者台帳 view (:func:`whereabouts`) shows per person the shelter
the newest note names, every note as history and who said so, and marks a person whose notes
disagree (two shelters, alive and missing) as a conflict for a person to resolve: notes are
never overwritten. A note id already recorded is skipped, so sending a file twice is harmless;
the same id with other content is reported, not stored.

Why the shelter column and its history live in the control database and not in the registry's
``damage`` table (the 被災者台帳 entries of 災対法90条の3): that table belongs to the town's
own system, which bcpctl protects and reads only from the offsite replica — it never writes
into a protected system, and a replica is an immutable snapshot that the next backup would
supersede. The notes therefore stay in ``evacuee_notes`` (shipped offsite with the control
state), and the 台帳 view joins them: :func:`name_residents` with a disaster id puts each
person's ``damage`` row (住家の被害, 罹災証明書, 援護) from the newest replica beside the
shelter column, so officials read one row per person.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)

from dc.config import Consortium
from dc.errors import N_, Message, UsageError
from dc.state import UtcDateTime, metadata
from victim_support import signing
from victim_support.audit import append, audited
from victim_support.enrolment import with_enrolled
from victim_support.errors import NoteRejected, SignatureInvalid
from victim_support.lookup import lookups
from victim_support.pfifnote import Note, parse_notes
from victim_support.pseudonym import Pseudonymizer, load_secret
from victim_support.replica import registry_snapshot
from victim_support.schema import STATUS_RESIDENT, damage, residents
from victim_support.settings import ExportSettings, default_site, registry_system
from victim_support.store import export_requests

NAMESPACE = "bcpctl-pfif-notes"
RECEIVED = "notes.received"
#: statuses that say the person was seen or spoke for themselves
LOCATED = ("is_note_author", "believed_alive")
#: statuses that cannot all be true of one person at once
_EXCLUSIVE = ({"believed_alive", "is_note_author"}, {"believed_dead"}, {"believed_missing"})

evacuee_notes = Table(
    "evacuee_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("partner", String(64), nullable=False),
    #: the person as the partner knows them: the unique part of our PFIF person_record_id
    Column("person_ref", String(64), nullable=False),
    Column("note_record_id", Text, nullable=False),
    Column("author_name", Text, nullable=False),
    Column("source_date", UtcDateTime, nullable=False),
    Column("entry_date", UtcDateTime, nullable=True),
    Column("status", String(32), nullable=False),
    Column("author_made_contact", Boolean, nullable=True),
    Column("last_known_location", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("via", String(16), nullable=False),
    UniqueConstraint("partner", "note_record_id"),
)


@dataclass(frozen=True)
class ReturnResult:
    partner: str
    stored: int
    already_recorded: int
    #: note ids already recorded with other content (not stored)
    changed: list[str]
    #: per tenant, how many notes were stored
    tenants: dict[str, int]
    audit_seq: int


@dataclass
class Whereabouts:
    """One person as the home town's 被災者台帳 shows them from the notes."""

    partner: str
    person_ref: str
    #: the place the newest note with a location names (the 避難先 column)
    shelter: str
    #: the newest note's status and who wrote it
    status: str
    said_by: str
    said_at: datetime
    #: notes that disagree (several places, or alive and missing): a person must look
    conflict: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    #: the resident as the home town's registry names them (氏名, 町字), when resolved (:func:`name_residents`)
    resident: str = ""
    #: the person's 被災者台帳 entry of the disaster asked for (damage, certificate, aid), when resolved
    ledger: dict[str, str] = field(default_factory=dict)


def receive_notes(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    *,
    partner: str,
    document: bytes,
    signature: str | None,
    now: datetime,
    via: str,
) -> ReturnResult:
    """Verify ``document`` as signed by ``partner``, parse it, and store every note it carries."""
    config = with_enrolled(config, engine)
    spec = config.partners.get(partner)
    if spec is None:
        raise UsageError(N_("unknown partner '{partner}': only an enrolled partner can return notes"), partner=partner)
    if not spec.verify_key:
        raise UsageError(
            N_("partner '{partner}' has no registered verify_key: its notes cannot be checked"), partner=partner
        )
    if not signature:
        raise SignatureInvalid(
            N_("the notes are not signed (ssh-keygen -Y sign -n {NAMESPACE}); nothing was stored"), NAMESPACE=NAMESPACE
        )
    try:
        signing.verify(signing.load_verify_key(spec.verify_key), document, signature, NAMESPACE)
    except SignatureInvalid:
        raise SignatureInvalid(
            N_("the signature is not partner '{partner}''s registered key's over these notes; nothing was stored"),
            partner=partner,
        ) from None
    notes = parse_notes(document)
    domains = {t.pfif_domain: tenant for tenant, t in settings.tenants.items() if t.pfif_domain}
    placed = [(_tenant_of(note, domains), note) for note in notes]
    digest = hashlib.sha256(document).hexdigest()

    def work(conn: Connection) -> ReturnResult:
        for tenant in sorted({tenant for (tenant, _ref), _note in placed}):
            if not received_from(conn, partner, tenant):
                raise NoteRejected(
                    N_(
                        "partner '{partner}' has received no list and no lookup answer of {name}: its notes about "
                        "that town's residents are refused; nothing was stored"
                    ),
                    partner=partner,
                    name=config.tenants[tenant].name,
                )
        stored, same, changed, per_tenant = 0, 0, [], dict[str, int]()
        for (tenant, ref), note in placed:
            known = conn.execute(
                select(evacuee_notes).where(
                    evacuee_notes.c.partner == partner, evacuee_notes.c.note_record_id == note.note_record_id
                )
            ).first()
            if known is not None:
                if _same(known._mapping, note, tenant, ref):
                    same += 1
                else:
                    changed.append(note.note_record_id)
                continue
            conn.execute(insert(evacuee_notes).values(**_row(note, tenant, ref, partner, now, via)))
            stored += 1
            per_tenant[tenant] = per_tenant.get(tenant, 0) + 1
        entry = append(
            conn,
            actor=f"partner:{partner}",
            action=RECEIVED,
            subject=partner,
            details={
                "sha256": digest,
                "notes": len(notes),
                "stored": stored,
                "already_recorded": same,
                "changed": changed[:20],
                "tenants": per_tenant,
                "via": via,
            },
        )
        return ReturnResult(partner, stored, same, changed, per_tenant, entry.seq)

    return audited(engine, work)


def received_from(conn: Connection, partner: str, tenant: str) -> bool:
    """Whether ``partner`` was given people of ``tenant``: a built list, or a lookup that found someone.

    A partner can only know our record ids of people it received; notes about a town it never
    received anyone of are not about our residents.
    """
    built = conn.execute(
        select(export_requests.c.id).where(
            export_requests.c.partner == partner, export_requests.c.tenant == tenant, export_requests.c.builds > 0
        )
    ).first()
    if built is not None:
        return True
    found = conn.execute(
        select(lookups.c.id).where(lookups.c.partner == partner, lookups.c.tenant == tenant, lookups.c.candidates > 0)
    ).first()
    return found is not None


def _tenant_of(note: Note, domains: dict[str, str]) -> tuple[str, str]:
    domain, _, ref = note.person_record_id.partition("/")
    if domain not in domains:
        raise NoteRejected(
            N_(
                "note {note_record_id}: person {person_record_id} is not a record of ours (our PFIF "
                "domains: {domains}); nothing was stored"
            ),
            note_record_id=note.note_record_id,
            person_record_id=note.person_record_id,
            domains=", ".join(sorted(domains)) or Message(N_("none configured")),
        )
    if len(ref) > 64:
        raise NoteRejected(
            N_("note {note_record_id}: the person's id is longer than any we give"), note_record_id=note.note_record_id
        )
    return domains[domain], ref


def _row(note: Note, tenant: str, ref: str, partner: str, now: datetime, via: str) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "partner": partner,
        "person_ref": ref,
        "note_record_id": note.note_record_id,
        "author_name": note.author_name,
        "source_date": note.source_date,
        "entry_date": note.entry_date,
        "status": note.status,
        "author_made_contact": note.author_made_contact,
        "last_known_location": note.last_known_location,
        "text": note.text,
        "received_at": now,
        "via": via,
    }


def _same(known: Any, note: Note, tenant: str, ref: str) -> bool:
    return (
        known["tenant"],
        known["person_ref"],
        known["author_name"],
        known["source_date"],
        known["status"],
        known["last_known_location"],
        known["text"],
    ) == (tenant, ref, note.author_name, note.source_date, note.status, note.last_known_location, note.text)


def conflicting(notes: list[dict[str, Any]]) -> bool:
    """Notes that cannot all be right: two different places, or statuses that exclude each other."""
    places = {n["last_known_location"] for n in notes if n["last_known_location"]}
    statuses = {n["status"] for n in notes if n["status"] and n["status"] != "information_sought"}
    groups = sum(1 for group in _EXCLUSIVE if statuses & group)
    return len(places) > 1 or groups > 1


def whereabouts(engine: Engine, tenant: str) -> list[Whereabouts]:
    """Per person of ``tenant`` with notes: where they are, who said so, every note (oldest first)."""
    with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(evacuee_notes)
                .where(evacuee_notes.c.tenant == tenant)
                .order_by(evacuee_notes.c.source_date, evacuee_notes.c.id)
            )
        ]
    people: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        people.setdefault((row["partner"], row["person_ref"]), []).append(row)
    found = []
    for (partner, ref), notes in sorted(people.items()):
        newest = notes[-1]
        located = [n for n in notes if n["last_known_location"]]
        history = [
            {k: n[k] for k in ("note_record_id", "author_name", "source_date", "status", "last_known_location", "text")}
            for n in notes
        ]
        found.append(
            Whereabouts(
                partner=partner,
                person_ref=ref,
                shelter=located[-1]["last_known_location"] if located else "",
                status=newest["status"],
                said_by=f"{newest['author_name']} ({partner})",
                said_at=newest["source_date"],
                conflict=conflicting(notes),
                history=history,
            )
        )
    return found


def name_residents(
    config: Consortium,
    settings: ExportSettings,
    tenant: str,
    people: list[Whereabouts],
    *,
    config_dir: Path | None,
    site: str | None = None,
    disaster_id: str | None = None,
) -> list[Whereabouts]:
    """``people`` with each resident's name and 町字 from the newest replica, for the home town's officials.

    With ``disaster_id``, also each one's 被災者台帳 entry of that disaster (``damage``), beside the shelter.

    A note names a person by the pseudonym the partner received; only the town holds the secret
    that recomputes it from the 宛名番号, so only the town can say who it is. A ref that matches
    no current resident stays unnamed.
    """
    secret = load_secret(settings, tenant, config_dir)
    wanted = {(p.partner, p.person_ref) for p in people}
    coders = {
        partner: Pseudonymizer(secret, config.partners[partner].lg_code)
        for partner in {p.partner for p in people}
        if partner in config.partners
    }
    system = registry_system(config, settings, tenant)
    site = site or default_site(config, settings)
    lg_code = config.tenants[tenant].lg_code
    with registry_snapshot(config, system, site, tenant_lg_code=lg_code, config_dir=config_dir) as (registry, _):
        with registry.connect() as conn:
            rows = conn.execute(
                select(
                    residents.c.atena_no, residents.c.family_name, residents.c.given_name, residents.c.machiaza_name
                ).where(residents.c.status == STATUS_RESIDENT)
            ).all()
            entries = {
                str(r.atena_no): {"damage": r.damage_status, "certificate": r.certificate_status, "aid": r.aid_status}
                for r in (
                    conn.execute(select(damage).where(damage.c.disaster_id == disaster_id)) if disaster_id else []
                )
            }
    names: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for atena, family, given, area in rows:
        for partner, coder in coders.items():
            key = (partner, coder.person(atena))
            if key in wanted:
                names[key] = (f"{family}\u3000{given} ({area})", entries.get(str(atena), {}))
    return [
        replace(p, resident=names[key][0], ledger=names[key][1]) if (key := (p.partner, p.person_ref)) in names else p
        for p in people
    ]


def located_per_tenant(engine: Engine) -> dict[str, int]:
    """Evacuees located per home town: distinct people with a shelter or a note saying they were seen."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                evacuee_notes.c.tenant,
                evacuee_notes.c.partner,
                evacuee_notes.c.person_ref,
                evacuee_notes.c.status,
                evacuee_notes.c.last_known_location,
            )
        ).all()
    seen: dict[str, set[tuple[str, str]]] = {}
    for tenant, partner, ref, status, place in rows:
        if place or status in LOCATED:
            seen.setdefault(tenant, set()).add((partner, ref))
    return {tenant: len(people) for tenant, people in seen.items()}
