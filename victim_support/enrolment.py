"""Enrolling a partner municipality on the day, and removing one.

After a disaster the town that shelters the evacuees is often one nobody configured:
``bcpctl partner enrol`` registers it in the control database — its name, 地方公共団体コード
(check digit validated, and name and code compared with the bundled 総務省 table where it
covers the prefecture: :mod:`dc.lgcodes`), its age recipient, its signing key and its officials. Both keys'
fingerprints are returned for reading aloud over the phone, so the operator confirms them
with the partner out of band before anything is sent. Until enrolled (or configured under
``partners:``) a municipality can request nothing: every path reads the partners through
:func:`with_enrolled`. Removal marks the partner removed — a configured one too — and the
caller revokes its tokens in the same step; a removed partner is no partner anywhere, and its
id is never given to another municipality (the history under it stays that partner's).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, Unpack

from pydantic import ValidationError
from sqlalchemy import Column, Connection, Engine, String, Table, Text, insert, select, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from dc.config import Consortium, Partner
from dc.configtypes import Identifier
from dc.errors import N_, Message, UsageError
from dc.lgcodes import name_problem
from dc.state import UtcDateTime, metadata
from victim_support import signing
from victim_support.audit import append, audited

ENROLLED = "partner.enrolled"
REMOVED = "partner.removed"

enrolled_partners = Table(
    "enrolled_partners",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("lg_code", String(6), nullable=False),
    Column("age_recipient", Text, nullable=False),
    Column("verify_key", Text, nullable=True),
    #: JSON list of the officials' names the partner declared
    Column("officials", Text, nullable=False),
    Column("enrolled_by", Text, nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=True),
    #: set when removed (a partner configured under ``partners:`` gets a row only to be removed)
    Column("removed_at", UtcDateTime, nullable=True),
    Column("removed_by", Text, nullable=True),
)


@dataclass(frozen=True)
class Enrolment:
    id: str
    name: str
    lg_code: str
    officials: list[str]
    #: read these aloud to the partner and hear them confirmed before anything is sent
    age_recipient: str
    age_recipient_fingerprint: str
    verify_key_fingerprint: str
    audit_seq: int


def read_aloud(text: str) -> str:
    """A short fingerprint of a key's text for a phone call: SHA-256, first 80 bits, in groups of four."""
    digest = hashlib.sha256(text.strip().encode()).hexdigest()[:20].upper()
    return "-".join(digest[i : i + 4] for i in range(0, len(digest), 4))


@dataclass(frozen=True)
class EnrolmentForm:
    """What an enrolment registers, every value validated."""

    partner_id: str
    name: str
    lg_code: str
    age_recipient: str
    #: the signing key as one ``ssh-ed25519 AAAA…`` line
    verify_key: str
    officials: list[str]

    def fingerprints(self) -> tuple[str, str]:
        """(age recipient, signing key) fingerprints as they are read aloud over the phone."""
        public = signing.load_verify_key(self.verify_key)
        return read_aloud(self.age_recipient), f"{signing.fingerprint(public)} ({read_aloud(self.verify_key)})"


class Entered(TypedDict):
    """An enrolment's values as the partner or the operator typed them (``verify_key``: a key line or file)."""

    partner_id: str
    name: str
    lg_code: str
    age_recipient: str
    verify_key: str
    officials: list[str]


def check_enrolment(engine: Engine, config: Consortium, **entered: Unpack[Entered]) -> EnrolmentForm:
    """The enrolment's values validated; refuse (exit 2) anything that does not validate or is taken."""
    partner_id, name, lg_code = entered["partner_id"], entered["name"], entered["lg_code"]
    age_recipient, verify_key, officials = entered["age_recipient"], entered["verify_key"], entered["officials"]
    public = signing.load_verify_key(verify_key)
    try:
        checked = Partner.model_validate(
            {
                "name": name,
                "lg_code": lg_code,
                "age_recipient": age_recipient.strip(),
                "verify_key": signing.public_line(public),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(
            N_("{map}: {first}"), map=".".join(map(str, first["loc"])), first=first["msg"].removeprefix("Value error, ")
        ) from None
    _check_identifier(partner_id)
    names = [o.strip() for o in officials if o.strip()]
    if not names:
        raise UsageError(N_("name at least one official of the partner (--official, repeatable)"))
    if not name.strip():
        raise UsageError(N_("the partner's name is required"))
    if problem := name_problem(name, lg_code):
        raise UsageError(N_("--lg-code: {problem}"), problem=problem)
    current = with_enrolled(config, engine)
    if partner_id in current.partners:
        raise UsageError(N_("partner '{partner_id}' is already enrolled or configured"), partner_id=partner_id)
    _check_not_anothers(engine, partner_id, lg_code)
    for other_id, other in current.partners.items():
        if other.lg_code == lg_code:
            raise UsageError(
                N_("{lg_code} is already partner '{other_id}' ({name})"),
                lg_code=lg_code,
                other_id=other_id,
                name=other.name,
            )
    if any(t.lg_code == lg_code for t in config.tenants.values()):
        raise UsageError(N_("{lg_code} is a member of the consortium, not a partner"), lg_code=lg_code)
    return EnrolmentForm(partner_id, name.strip(), lg_code, checked.age_recipient, str(checked.verify_key), names)


def enrol(
    engine: Engine,
    config: Consortium,
    *,
    actor: str,
    now: datetime,
    invitation: str | None = None,
    **entered: Unpack[Entered],
) -> Enrolment:
    """Register a partner that is not configured; refuse (exit 2) anything that does not validate."""
    form = check_enrolment(engine, config, **entered)
    partner_id, lg_code = form.partner_id, form.lg_code
    public = signing.load_verify_key(form.verify_key)
    names = form.officials

    def work(conn: Connection) -> int:
        # a removed one of this very municipality re-enrols; the write comes first so that the
        # check after it is in the transaction (pysqlite begins at the first write), and an
        # enrolment of the same id since check_enrolment is refused, never replaced
        conn.execute(
            enrolled_partners.delete().where(
                enrolled_partners.c.id == partner_id,
                enrolled_partners.c.removed_at.is_not(None),
                enrolled_partners.c.lg_code == lg_code,
            )
        )
        if conn.execute(select(enrolled_partners.c.id).where(enrolled_partners.c.id == partner_id)).first():
            raise UsageError(N_("partner '{partner_id}' is already enrolled or configured"), partner_id=partner_id)
        conn.execute(
            insert(enrolled_partners).values(
                id=partner_id,
                name=form.name,
                lg_code=lg_code,
                age_recipient=form.age_recipient,
                verify_key=form.verify_key,
                officials=json.dumps(names, ensure_ascii=False),
                enrolled_by=actor,
                enrolled_at=now,
            )
        )
        entry = append(
            conn,
            actor=actor,
            action=ENROLLED,
            subject=partner_id,
            details={
                "name": form.name,
                "lg_code": lg_code,
                "age_recipient": form.age_recipient,
                "verify_key_fingerprint": signing.fingerprint(public),
                "officials": names,
                **({"invitation": invitation} if invitation else {}),
            },
        )
        return entry.seq

    seq = audited(engine, work)
    age_fingerprint, key_fingerprint = form.fingerprints()
    return Enrolment(
        id=partner_id,
        name=form.name,
        lg_code=lg_code,
        officials=names,
        age_recipient=form.age_recipient,
        age_recipient_fingerprint=age_fingerprint,
        verify_key_fingerprint=key_fingerprint,
        audit_seq=seq,
    )


def _check_not_anothers(engine: Engine, partner_id: str, lg_code: str) -> None:
    """Refuse an id a removed partner of another municipality held.

    Requests, notes, lookups, tokens and audit entries name a partner by its id; a new municipality
    under a removed one's id would be shown that history as its own and answer for it. The same
    municipality (same 地方公共団体コード) coming back keeps its id and its history.
    """
    try:
        with engine.connect() as conn:
            row = conn.execute(select(enrolled_partners).where(enrolled_partners.c.id == partner_id)).first()
    except (OperationalError, ProgrammingError):  # a control database not upgraded yet: no history
        return
    if row is not None and row.lg_code != lg_code:
        raise UsageError(
            N_(
                "partner id '{partner_id}' belonged to {name} ({lg_code}), removed; its history stays with "
                "it: enrol this municipality under another id"
            ),
            partner_id=partner_id,
            name=row.name,
            lg_code=row.lg_code,
        )


def _check_identifier(partner_id: str) -> None:
    from pydantic import TypeAdapter

    try:
        TypeAdapter(Identifier).validate_python(partner_id)
    except ValidationError:
        raise UsageError(
            N_("'{partner_id}' is not a usable partner id (lower-case letters, digits and -)"), partner_id=partner_id
        ) from None


def mark_removed(conn: Connection, config: Consortium, partner_id: str, *, actor: str, now: datetime) -> None:
    """Within the caller's transaction: the partner is removed (the caller revokes its tokens alongside)."""
    partners = _partners(conn, config)
    if partner_id not in partners:
        raise UsageError(
            N_("no partner '{partner_id}' (known: {partners})"),
            partner_id=partner_id,
            partners=", ".join(partners) or Message(N_("none")),
        )
    found = conn.execute(select(enrolled_partners.c.id).where(enrolled_partners.c.id == partner_id)).first()
    if found is None:  # a configured partner: a row that only says it is removed
        spec = config.partners[partner_id]
        conn.execute(
            insert(enrolled_partners).values(
                id=partner_id,
                name=spec.name,
                lg_code=spec.lg_code,
                age_recipient=spec.age_recipient,
                verify_key=spec.verify_key,
                officials="[]",
                enrolled_by="configuration",
                enrolled_at=None,
            )
        )
    conn.execute(
        update(enrolled_partners).where(enrolled_partners.c.id == partner_id).values(removed_at=now, removed_by=actor)
    )


def _partners(conn: Connection, config: Consortium) -> dict[str, Partner]:
    try:
        rows = conn.execute(select(enrolled_partners)).all()
    except (OperationalError, ProgrammingError):  # a control database not upgraded yet: nobody enrolled
        return dict(config.partners)
    partners = dict(config.partners)
    for row in rows:
        r = row._mapping
        if r["removed_at"] is not None:
            partners.pop(r["id"], None)
        elif r["id"] not in config.partners:
            partners[r["id"]] = Partner(
                name=r["name"], lg_code=r["lg_code"], age_recipient=r["age_recipient"], verify_key=r["verify_key"]
            )
    return partners


def with_enrolled(config: Consortium, engine: Engine) -> Consortium:
    """``config`` with the partners enrolled in the control database added and the removed ones gone."""
    with engine.connect() as conn:
        partners = _partners(conn, config)
    if partners == dict(config.partners):
        return config
    return config.model_copy(update={"partners": partners})


def enrolled_officials(engine: Engine) -> dict[str, list[str]]:
    """The officials each enrolled partner declared."""
    with engine.connect() as conn:
        rows = conn.execute(select(enrolled_partners.c.id, enrolled_partners.c.officials)).all()
    return {pid: list(json.loads(text)) for pid, text in rows}
