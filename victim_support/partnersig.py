"""Signed partner requests: an OpenSSH SSHSIG over the method, path, time, nonce and body.

A partner signs with the Ed25519 key whose public half is registered as
``partners.<id>.verify_key``; it needs nothing of ours — ``ssh-keygen -Y sign -n
bcpctl-partner-request -f KEY`` over the message below works. The message is::

    bcpctl-partner-request/1
    POST
    /api/partner/requests
    koga
    1764547200
    5f0c3a1e9b7d4c2a
    <SHA-256 hex of the exact body bytes>

and travels in the headers ``X-BCP-Partner``, ``X-BCP-Timestamp`` (Unix seconds),
``X-BCP-Nonce`` (16-64 of ``[A-Za-z0-9_-]``) and ``X-BCP-Signature`` (the armored signature's
base64 body on one line). The timestamp must be within the configured window and each nonce
is accepted once, so a captured request cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Column, Engine, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError

from dc.config import Consortium
from dc.errors import N_, AuthError, BcpError
from dc.state import UtcDateTime, metadata
from victim_support import signing

NAMESPACE = "bcpctl-partner-request"
VERSION = "bcpctl-partner-request/1"
HEADERS = ("x-bcp-partner", "x-bcp-timestamp", "x-bcp-nonce", "x-bcp-signature")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"

seen_nonces = Table(
    "web_request_nonces",
    metadata,
    Column("partner", String(64), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False, index=True),
)


class SignatureRefused(AuthError):
    """A signed request that is unsigned, unknown, stale, replayed or does not verify (HTTP 401)."""


@dataclass(frozen=True)
class SignedRequest:
    partner: str
    nonce: str
    timestamp: int


def message(method: str, target: str, partner: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The exact bytes a partner signs (see the module docstring)."""
    lines = [VERSION, method.upper(), target, partner, str(timestamp), nonce, hashlib.sha256(body).hexdigest()]
    return ("\n".join(lines) + "\n").encode()


def sign_headers(
    key: Ed25519PrivateKey, partner: str, method: str, target: str, body: bytes, *, now: datetime
) -> dict[str, str]:
    """The four headers of a signed request (what a partner's client sends)."""
    nonce = secrets.token_urlsafe(16)
    timestamp = int(now.timestamp())
    armored = signing.sign(key, message(method, target, partner, timestamp, nonce, body), NAMESPACE)
    compact = "".join(line for line in armored.splitlines() if line and not line.startswith("-----"))
    return {
        "X-BCP-Partner": partner,
        "X-BCP-Timestamp": str(timestamp),
        "X-BCP-Nonce": nonce,
        "X-BCP-Signature": compact,
    }


def has_signature(headers: dict[str, str]) -> bool:
    return any(name in headers for name in HEADERS)


def verify_signed(
    engine: Engine,
    config: Consortium,
    *,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    window: int,
) -> SignedRequest:
    """The partner a request is signed by; refuses with one line naming what is wrong."""
    missing = [name for name in HEADERS if not headers.get(name)]
    if missing:
        raise SignatureRefused(N_("signed request lacks the header {missing}"), missing=missing[0])
    partner, stamp, nonce, compact = (headers[name] for name in HEADERS)
    spec = config.partners.get(partner)
    if spec is None:
        raise SignatureRefused(N_("unknown partner: no registered key for this X-BCP-Partner"))
    if not spec.verify_key:
        raise SignatureRefused(
            N_("partner '{partner}' has no registered verify_key; signed requests are refused"), partner=partner
        )
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRefused(N_("X-BCP-Timestamp must be Unix seconds"))
    timestamp = int(stamp)
    if abs(now.timestamp() - timestamp) > window:
        raise SignatureRefused(N_("X-BCP-Timestamp is more than {window} s from the server's clock"), window=window)
    if not _NONCE.match(nonce):
        raise SignatureRefused(N_("X-BCP-Nonce must be 16 to 64 characters of [A-Za-z0-9_-]"))
    if len(compact) > 2048 or not re.fullmatch(r"[A-Za-z0-9+/=]+", compact):
        raise SignatureRefused(N_("X-BCP-Signature must be the base64 body of an SSH signature on one line"))
    try:
        public = signing.load_verify_key(spec.verify_key)
        base64.b64decode(compact, validate=True)
        lines = [compact[i : i + 70] for i in range(0, len(compact), 70)]
        armored = "\n".join([_BEGIN, *lines, _END]) + "\n"
        signing.verify(public, message(method, target, partner, timestamp, nonce, body), armored, NAMESPACE)
    except (BcpError, ValueError):
        raise SignatureRefused(
            N_("the signature does not verify with partner '{partner}''s registered key"), partner=partner
        ) from None
    _remember(engine, partner, nonce, now, window)
    return SignedRequest(partner, nonce, timestamp)


def _remember(engine: Engine, partner: str, nonce: str, now: datetime, window: int) -> None:
    """Accept each nonce once; entries older than twice the window can no longer be replayed."""
    horizon = now - timedelta(seconds=2 * window)
    try:
        with engine.begin() as conn:
            conn.execute(delete(seen_nonces).where(seen_nonces.c.seen_at < horizon))
            conn.execute(insert(seen_nonces).values(partner=partner, nonce=nonce, seen_at=now))
    except IntegrityError:
        raise SignatureRefused(N_("this request was already received (nonce replayed)")) from None
