"""Browser sessions, kept server-side: the cookie holds 256 random bits, the database its digest.

A session belongs to an operator account or to a partner (after a token login) and carries
its own CSRF token (the synchronizer-token pattern, OWASP CSRF cheat sheet): every form post
and every cookie-authenticated API call that changes state must echo it. Logging out deletes
the row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Engine, String, Table, delete, insert, select

from dc.state import UtcDateTime, metadata

OPERATOR = "operator"
PARTNER = "partner"

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Session:
    kind: str
    subject: str
    csrf: str
    expires_at: datetime


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def create_session(engine: Engine, kind: str, subject: str, *, lifetime: int, now: datetime) -> tuple[str, Session]:
    """A new session; returns the cookie value (never stored) and the session."""
    cookie = secrets.token_urlsafe(32)
    session = Session(kind, subject, secrets.token_urlsafe(32), now + timedelta(seconds=lifetime))
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        conn.execute(
            insert(web_sessions).values(
                digest=_digest(cookie),
                kind=kind,
                subject=subject,
                csrf=session.csrf,
                created_at=now,
                expires_at=session.expires_at,
            )
        )
    return cookie, session


def load_session(engine: Engine, cookie: str, now: datetime) -> Session | None:
    if not cookie or len(cookie) > 128:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(web_sessions).where(web_sessions.c.digest == _digest(cookie))).first()
    if row is None:
        return None
    if row.expires_at <= now:
        return None
    return Session(row.kind, row.subject, row.csrf, row.expires_at)


def end_session(engine: Engine, cookie: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.digest == _digest(cookie)))
