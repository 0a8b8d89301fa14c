"""Per-partner bearer tokens, issued by an operator and stored only as SHA-256 digests.

A token is 256 random bits, so a plain SHA-256 is enough to store it (no password stretching
needed: it cannot be guessed from a list). The secret is shown once, at issue; revocation and
expiry are checked on every use. Issuing and revoking are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Engine, Row, String, Table, Text, insert, select, update

from dc.config import Consortium
from dc.errors import N_, Message, UsageError
from dc.state import UtcDateTime, metadata
from victim_support.audit import append, audited
from victim_support.enrolment import REMOVED, mark_removed

PREFIX = "bcpt_"

partner_tokens = Table(
    "web_partner_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("partner", String(64), nullable=False, index=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("label", Text, nullable=False, default=""),
    Column("issued_by", Text, nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    partner: str
    label: str
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    #: shown once; only its digest is stored.
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: Row[Any]) -> TokenInfo:
    r = row._mapping
    return TokenInfo(
        r["id"], r["partner"], r["label"], r["issued_by"], r["issued_at"], r["expires_at"], r["revoked_at"]
    )


def issue_token(
    engine: Engine, config: Consortium, partner: str, *, label: str, issued_by: str, lifetime: int, now: datetime
) -> IssuedToken:
    if partner not in config.partners:
        raise UsageError(
            N_("unknown partner '{partner}' (known: {partners})"),
            partner=partner,
            partners=", ".join(config.partners) or Message(N_("none")),
        )
    if len(label) > 200:
        raise UsageError(N_("the token label must be at most 200 characters"))
    token_id = secrets.token_hex(4)
    secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    expires = now + timedelta(seconds=lifetime)
    info = TokenInfo(token_id, partner, label, issued_by, now.astimezone(UTC), expires.astimezone(UTC), None)

    def work(conn: Connection) -> None:
        conn.execute(
            insert(partner_tokens).values(
                id=token_id,
                partner=partner,
                label=label,
                issued_by=issued_by,
                issued_at=now,
                expires_at=expires,
                digest=digest(secret),
            )
        )
        append(
            conn,
            actor=issued_by,
            action="token.issued",
            subject=partner,
            details={"token": token_id, "label": label, "expires_at": info.expires_at.isoformat()},
        )

    audited(engine, work)
    return IssuedToken(info, secret)


def revoke_token(engine: Engine, token_id: str, *, actor: str, now: datetime) -> TokenInfo:

    def work(conn: Connection) -> TokenInfo:
        row = conn.execute(select(partner_tokens).where(partner_tokens.c.id == token_id)).first()
        if row is None:
            raise UsageError(N_("no token '{token_id}'"), token_id=token_id)
        conn.execute(update(partner_tokens).where(partner_tokens.c.id == token_id).values(revoked_at=now))
        append(conn, actor=actor, action="token.revoked", subject=row.partner, details={"token": token_id})
        return _info(row)

    return audited(engine, work)


def remove_partner(engine: Engine, config: Consortium, partner_id: str, *, actor: str, now: datetime) -> dict[str, Any]:
    """Remove a partner (enrolled or configured) and revoke every token it holds, in one transaction."""

    def work(conn: Connection) -> dict[str, Any]:
        mark_removed(conn, config, partner_id, actor=actor, now=now)
        revoked = conn.execute(
            update(partner_tokens)
            .where(partner_tokens.c.partner == partner_id, partner_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        entry = append(conn, actor=actor, action=REMOVED, subject=partner_id, details={"tokens_revoked": revoked})
        return {"partner": partner_id, "tokens_revoked": revoked, "audit_seq": entry.seq}

    return audited(engine, work)


def list_tokens(engine: Engine, partner: str | None = None) -> list[TokenInfo]:
    query = select(partner_tokens).order_by(partner_tokens.c.issued_at)
    if partner:
        query = query.where(partner_tokens.c.partner == partner)
    with engine.connect() as conn:
        return [_info(row) for row in conn.execute(query)]


def partner_for_token(engine: Engine, config: Consortium, secret: str, now: datetime) -> str | None:
    """The partner a valid (known, unrevoked, unexpired) token belongs to, else ``None``."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    wanted = digest(secret)
    with engine.connect() as conn:
        row = conn.execute(select(partner_tokens).where(partner_tokens.c.digest == wanted)).first()
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    return row.partner if row.partner in config.partners else None
