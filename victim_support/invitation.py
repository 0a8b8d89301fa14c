"""A partner enrolled through the portal: the operator's one-time invitation, the official's form, the phone call.

``bcpctl partner invite ID`` makes a one-time token with an expiry; only its SHA-256 is stored,
so the control database (or its offsite copy) cannot be read back into a usable invitation.
The invited official opens ``/portal/enrol/<token>`` and fills in the municipality's name,
地方公共団体コード, age recipient, signing key and officials; everything is validated as
``partner enrol`` validates it and kept with the invitation, which is then used up. The
partner still exists nowhere: only ``bcpctl partner confirm ID`` — the operator typing the
two fingerprints the official read aloud over the phone — enrols it
(:func:`victim_support.enrolment.enrol`). Until then no path that reads the partners
(:func:`victim_support.enrolment.with_enrolled`) knows it, so it can request nothing.
A reused, expired or unknown token is refused with the same message, naming nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, Engine, String, Table, Text, insert, select, update

from dc.audit import append, audited
from dc.config import Consortium
from dc.errors import N_, AuthError, UsageError
from dc.state import UtcDateTime, metadata
from victim_support.enrolment import Enrolment, EnrolmentForm, _check_identifier, check_enrolment, enrol, with_enrolled

INVITED = "partner.invited"
SUBMITTED = "partner.invitation_used"
#: an invitation is for a call on the day, not a standing door
MAX_VALIDITY = timedelta(days=7)
REFUSED = N_("this invitation is unknown, used or expired; ask the data center's operator for a new one")

partner_invitations = Table(
    "partner_invitations",
    metadata,
    #: SHA-256 of the token: the token itself is printed once and never stored
    Column("token_sha256", String(64), primary_key=True),
    Column("partner_id", String(64), nullable=False, index=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    #: when the official submitted the form (the token is used up then), and the form as JSON
    Column("used_at", UtcDateTime, nullable=True),
    Column("form", Text, nullable=True),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Column("confirmed_by", Text, nullable=True),
)


@dataclass(frozen=True)
class Invitation:
    partner_id: str
    #: printed once: give it to the partner's official (it is the only copy)
    token: str
    path: str
    expires_at: datetime
    audit_seq: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(
    engine: Engine, config: Consortium, *, partner_id: str, valid: timedelta, actor: str, now: datetime
) -> Invitation:
    """A one-time invitation for ``partner_id`` to enrol through the portal."""
    _check_identifier(partner_id)
    if not timedelta(minutes=5) <= valid <= MAX_VALIDITY:
        raise UsageError(N_("an invitation is valid between 5 minutes and {days} days"), days=MAX_VALIDITY.days)
    if partner_id in with_enrolled(config, engine).partners:
        raise UsageError(N_("partner '{partner_id}' is already enrolled or configured"), partner_id=partner_id)
    token = secrets.token_urlsafe(32)
    expires = now + valid

    def work(conn: Connection) -> int:
        conn.execute(
            insert(partner_invitations).values(
                token_sha256=_digest(token), partner_id=partner_id, created_by=actor, created_at=now, expires_at=expires
            )
        )
        entry = append(
            conn, actor=actor, action=INVITED, subject=partner_id, details={"expires_at": expires.isoformat()}
        )
        return entry.seq

    seq = audited(engine, work)
    return Invitation(partner_id, token, f"/portal/enrol/{token}", expires, seq)


def _open(conn: Connection, token: str, now: datetime) -> str:
    """The partner id of a usable invitation, else :class:`AuthError` with one message for every reason."""
    row = conn.execute(select(partner_invitations).where(partner_invitations.c.token_sha256 == _digest(token))).first()
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise AuthError(REFUSED)
    return str(row.partner_id)


def invited_partner(engine: Engine, token: str, now: datetime) -> str:
    """The partner id an unused, unexpired invitation is for (the portal shows the form for it)."""
    with engine.connect() as conn:
        return _open(conn, token, now)


def submit(
    engine: Engine,
    config: Consortium,
    token: str,
    *,
    name: str,
    lg_code: str,
    age_recipient: str,
    verify_key: str,
    officials: list[str],
    now: datetime,
) -> tuple[EnrolmentForm, tuple[str, str]]:
    """The invited official's form, validated and kept; the token is used up. Returns the fingerprints to read aloud."""
    partner_id = invited_partner(engine, token, now)
    form = check_enrolment(
        engine, config, partner_id=partner_id, name=name, lg_code=lg_code, age_recipient=age_recipient,
        verify_key=verify_key, officials=officials,
    )  # fmt: skip

    def work(conn: Connection) -> None:
        _open(conn, token, now)  # in the transaction: two submissions of one token cannot both pass
        done = conn.execute(
            update(partner_invitations)
            .where(partner_invitations.c.token_sha256 == _digest(token), partner_invitations.c.used_at.is_(None))
            .values(used_at=now, form=json.dumps(vars(form), ensure_ascii=False))
        ).rowcount
        if done != 1:
            raise AuthError(REFUSED)
        append(
            conn,
            actor=f"invitation:{partner_id}",
            action=SUBMITTED,
            subject=partner_id,
            details={"name": form.name, "lg_code": form.lg_code, "officials": form.officials},
        )

    audited(engine, work)
    return form, form.fingerprints()


def confirm(
    engine: Engine,
    config: Consortium,
    partner_id: str,
    *,
    age_fingerprint: str,
    key_fingerprint: str,
    actor: str,
    now: datetime,
) -> Enrolment:
    """Enrol the partner an official submitted, once the fingerprints read aloud match what was submitted."""
    with engine.connect() as conn:
        row = conn.execute(
            select(partner_invitations)
            .where(
                partner_invitations.c.partner_id == partner_id,
                partner_invitations.c.used_at.is_not(None),
                partner_invitations.c.confirmed_at.is_(None),
            )
            .order_by(partner_invitations.c.used_at.desc())
        ).first()
    if row is None:
        raise UsageError(
            N_("no submitted, unconfirmed enrolment of '{partner_id}' (bcpctl partner invite {partner_id})"),
            partner_id=partner_id,
        )
    form = EnrolmentForm(**json.loads(row.form))
    want_age, want_key = form.fingerprints()
    if _plain(age_fingerprint) != _plain(want_age) or _plain(key_fingerprint) not in {
        _plain(want_key.split(" (")[0]),
        _plain(want_key.split(" (")[-1].rstrip(")")),
    }:
        raise AuthError(
            N_("the fingerprints read aloud do not match what was submitted for '{partner_id}'; nothing enrolled"),
            partner_id=partner_id,
        )
    done = enrol(
        engine, config, partner_id=partner_id, name=form.name, lg_code=form.lg_code, age_recipient=form.age_recipient,
        verify_key=form.verify_key, officials=form.officials, actor=actor, now=now, invitation=row.token_sha256[:16],
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            update(partner_invitations)
            .where(partner_invitations.c.token_sha256 == row.token_sha256)
            .values(confirmed_at=now, confirmed_by=actor)
        )
    return done


#: issued, not yet used; submitted, awaiting the phone call; never used in time; enrolled
WAITING, PENDING, EXPIRED, CONFIRMED = "waiting", "pending", "expired", "confirmed"


@dataclass(frozen=True)
class InvitationState:
    """One invitation as the operator follows it up; never the token, nor the fingerprints (the
    operator must hear those from the official, not read them here)."""

    #: the first 16 hex digits of the token's SHA-256, as the enrolment's audit entry names it
    id: str
    partner_id: str
    status: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    #: from the submitted form: the municipality's name, code and officials
    name: str | None
    lg_code: str | None
    officials: list[str]


def invitation_status(
    used_at: datetime | None, confirmed_at: datetime | None, expires_at: datetime, now: datetime
) -> str:
    """Pure: a submitted form waits for its phone call whatever the token's expiry (the token is spent)."""
    if confirmed_at is not None:
        return CONFIRMED
    if used_at is not None:
        return PENDING
    return EXPIRED if now >= expires_at else WAITING


def list_invitations(engine: Engine, now: datetime, status: str | None = None) -> list[InvitationState]:
    """Every invitation, newest first (optionally only those in ``status``)."""
    with engine.connect() as conn:
        rows = conn.execute(select(partner_invitations).order_by(partner_invitations.c.created_at.desc())).all()
    found = []
    for row in rows:
        form = json.loads(row.form) if row.form else {}
        state = invitation_status(row.used_at, row.confirmed_at, row.expires_at, now)
        if status is not None and state != status:
            continue
        found.append(
            InvitationState(
                id=row.token_sha256[:16],
                partner_id=row.partner_id,
                status=state,
                created_by=row.created_by,
                created_at=row.created_at,
                expires_at=row.expires_at,
                used_at=row.used_at,
                confirmed_at=row.confirmed_at,
                confirmed_by=row.confirmed_by,
                name=form.get("name"),
                lg_code=form.get("lg_code"),
                officials=list(form.get("officials", [])),
            )
        )
    return found


def _plain(fingerprint: str) -> str:
    """A fingerprint as typed, without spaces, dashes or case."""
    return "".join(fingerprint.split()).replace("-", "").upper()
