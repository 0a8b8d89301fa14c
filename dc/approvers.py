"""Approver credentials: a secret each official holds, and a public verifier in ``bcpctl.yaml``.

An approval (an export request, a failover) must prove who gave it, and must stay provable
later by anyone holding the configuration, without any secret and without trusting the
control database (whoever can write that database could otherwise approve, or widen what
was approved). So:

- the official holds one secret: a file ``bcpctl approver enroll --generate`` writes, or a
  passphrase of at least :data:`MIN_SECRET_LENGTH` characters — nothing else to install or
  learn (no SSH keys, no tokens to hash by hand);
- Argon2id over the secret, with the approver's own random salt (RFC 9106; slow and
  memory-hard, because the verifier is readable by whoever reads the configuration), gives
  an Ed25519 seed; the configuration's ``approvers:`` section holds only the cost, the salt
  and the public key (:class:`Credential`);
- approving signs a :func:`statement` of exactly what is approved; the signature goes into
  the audit chain, and every later check (``export build``, ``audit verify``) verifies it
  against the configured public key. A database writer can neither sign nor plant a verifier:
  the verifiers live in the configuration file, the trust root that already says who may approve.

Because each approver has a random salt, one secret enrolled under two names gives two
different public keys; :func:`holds` lets enrolment and approval compare a secret against
another approver's credential, so one person cannot count twice with one secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from dc.errors import N_, AuthError, UsageError, os_reason
from dc.osuser import os_user

SECRET_ENV = "BCPCTL_APPROVER_SECRET"
#: where a two-person rule also needs the operator's own credential (failover, failback)
OPERATOR_SECRET_ENV = "BCPCTL_OPERATOR_SECRET"
MIN_SECRET_LENGTH = 12
MAX_SECRET_LENGTH = 1024
PREFIX = "approver-v1$argon2id"
_TEXT = re.compile(r"^approver-v1\$argon2id\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})$")
#: binds the derived key to this use, so the same passphrase elsewhere (a web password) gives another key.
_CONTEXT = b"bcpctl approver credential v1"
_SIGNED = b"bcpctl approval v1\n"


@dataclass(frozen=True)
class Cost:
    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 1


DEFAULT_COST = Cost()
#: OWASP's Argon2id minimum (m=19 MiB, t=2, p=1); a weaker configured credential is refused.
MIN_COST = Cost(19 * 1024, 2, 1)

#: OpenSSL's Argon2id deadlocks when threads derive at once (see backup/keys.py); the web
#: surface verifies approvals from a thread pool.
_KDF_LOCK = threading.Lock()


class ApproverAuthFailed(AuthError):
    """No secret, an unknown approver, or a secret that does not match (exit 3); nothing was recorded."""


@dataclass(frozen=True)
class Credential:
    """What ``approvers.<name>`` in the configuration holds: cost, salt and public key."""

    cost: Cost
    salt: bytes
    public_key: bytes

    @property
    def id(self) -> str:
        """A short, stable name for the credential (audit entries record it)."""
        return "apk-" + hashlib.sha256(self.public_key).hexdigest()[:16]

    def text(self) -> str:
        c = self.cost
        return f"{PREFIX}$m={c.memory_kib},t={c.iterations},p={c.lanes}${_b64(self.salt)}${_b64(self.public_key)}"


@dataclass(frozen=True)
class Proof:
    """A signed statement of what one approver approved; stored whole in the audit chain."""

    statement: dict[str, Any]
    signature: str

    @property
    def approver(self) -> str:
        return str(self.statement["approver"])

    @property
    def credential(self) -> str:
        return str(self.statement["credential"])

    def details(self) -> dict[str, Any]:
        return {"approval": self.statement, "signature": self.signature}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_credential(text: str) -> Credential:
    """The configured verifier; a malformed or too cheap one is a :class:`ValueError` (config error)."""
    m = _TEXT.match(str(text).strip())
    if m is None:
        raise ValueError("not an approver credential: use the line 'bcpctl approver enroll' prints")
    cost = Cost(int(m[1]), int(m[2]), int(m[3]))
    if cost.memory_kib < MIN_COST.memory_kib or cost.iterations < MIN_COST.iterations or cost.lanes != 1:
        raise ValueError("approver credential too cheap to derive (at least m=19456,t=2; p=1)")
    if cost.memory_kib > 4 * 1024 * 1024 or cost.iterations > 64:
        raise ValueError("approver credential cost out of range")
    return Credential(cost, _unb64(m[4]), _unb64(m[5]))


def _key(secret: str, salt: bytes, cost: Cost) -> Ed25519PrivateKey:
    with _KDF_LOCK:
        seed = Argon2id(
            salt=salt,
            length=32,
            iterations=cost.iterations,
            lanes=cost.lanes,
            memory_cost=cost.memory_kib,
            ad=_CONTEXT,
        ).derive(secret.encode())
    return Ed25519PrivateKey.from_private_bytes(seed)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_secret(secret: str) -> None:
    """Refuse a secret that is too short to resist guessing against the public verifier."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise UsageError(
            N_("an approver secret needs at least {MIN_SECRET_LENGTH} characters"), MIN_SECRET_LENGTH=MIN_SECRET_LENGTH
        )
    if len(secret) > MAX_SECRET_LENGTH:
        raise UsageError(
            N_("an approver secret has at most {MAX_SECRET_LENGTH} characters"), MAX_SECRET_LENGTH=MAX_SECRET_LENGTH
        )


def new_secret() -> str:
    """A generated secret (256 bits), for a file the official keeps."""
    return _b64(os.urandom(32))


def enroll(secret: str, cost: Cost = DEFAULT_COST) -> Credential:
    """A fresh credential for ``secret`` (a new random salt each time)."""
    check_secret(secret)
    salt = os.urandom(16)
    return Credential(cost, salt, _raw(_key(secret, salt, cost).public_key()))


def holds(credential: Credential, secret: str) -> bool:
    """Whether ``secret`` is the one this credential was enrolled with."""
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        return False
    derived = _raw(_key(secret, credential.salt, credential.cost).public_key())
    return hmac.compare_digest(derived, credential.public_key)


def credential_of(approvers: Mapping[str, str], approver: str) -> Credential | None:
    text = approvers.get(approver)
    return None if text is None else parse_credential(text)


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    body = json.dumps(statement, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return _SIGNED + body.encode()


def prove(approvers: Mapping[str, str], approver: str, secret: str | None, what: Mapping[str, Any]) -> Proof:
    """Sign ``what`` as ``approver``; the statement adds the approver, credential id and OS user."""
    if not secret:
        raise ApproverAuthFailed(
            N_("no approver secret: set ${SECRET_ENV} or pass --approver-secret-file"), SECRET_ENV=SECRET_ENV
        )
    credential = credential_of(approvers, approver)
    if credential is None:
        raise ApproverAuthFailed(
            N_("'{approver}' has no enrolled credential (approvers: in the configuration; bcpctl approver enroll)"),
            approver=approver,
        )
    key = _key(secret, credential.salt, credential.cost) if len(secret) <= MAX_SECRET_LENGTH else None
    if key is None or not hmac.compare_digest(_raw(key.public_key()), credential.public_key):
        raise ApproverAuthFailed(
            N_("the secret does not match approver '{approver}'; nothing was recorded"), approver=approver
        )
    statement = {**what, "approver": approver, "credential": credential.id, "os_user": os_user()}
    return Proof(statement, _b64(key.sign(statement_bytes(statement))))


def verify(approvers: Mapping[str, str], details: Mapping[str, Any]) -> str | None:
    """Why an audit entry's approval does not verify against the configuration, or ``None`` if it does."""
    statement, signature = details.get("approval"), details.get("signature")
    if not isinstance(statement, dict) or not isinstance(signature, str):
        return "carries no signed approval"
    approver = str(statement.get("approver"))
    try:
        credential = credential_of(approvers, approver)
    except ValueError:
        credential = None
    if credential is None:
        return f"'{approver}' has no credential in the configuration"
    if statement.get("credential") != credential.id:
        return f"signed with {statement.get('credential')}, not {approver}'s configured credential {credential.id}"
    try:
        Ed25519PublicKey.from_public_bytes(credential.public_key).verify(_unb64(signature), statement_bytes(statement))
    except (InvalidSignature, ValueError):
        return f"the signature of {approver}'s approval does not verify"
    return None


def read_secret(
    path: str | os.PathLike[str] | None, *, env: str = SECRET_ENV, what: str = "approver secret"
) -> str | None:
    """The approver's secret from ``path``, else ``$env``; ``None`` when neither.

    A credential that cannot be read is a missing credential: exit 3, like a wrong one.
    """
    from dc.secrets import read_secret_file, secret_from_env

    if path is not None:
        return read_secret_file(path, what, error=ApproverAuthFailed)
    return secret_from_env(env, what, error=ApproverAuthFailed)


def write_new_secret(path: str | os.PathLike[str]) -> str:
    """Generate a secret into a new file only its owner can read; an existing file is never replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(
            N_("{path} exists: --generate never replaces a secret (drop --generate to enroll it)"), path=path
        ) from None
    except OSError as exc:
        raise UsageError(N_("cannot create {path}: {strerror}"), path=path, strerror=os_reason(exc)) from None
    secret = new_secret()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")
    return secret


@dataclass(frozen=True)
class Enrolment:
    approver: str
    #: the value for ``approvers.<approver>`` in bcpctl.yaml
    credential: str
    credential_id: str
    #: the approver already had a credential, which this one replaces once configured
    replaces: str | None
    #: the audit entry recording the enrolment (``None`` without a control database)
    audit_seq: int | None


_NAME = re.compile(r"^[^\s,]{1,64}$")


def check_name(approver: str) -> None:
    if not _NAME.match(approver):
        raise UsageError(
            N_("invalid approver name '{approver}': 1-64 characters, no spaces or commas"), approver=approver
        )


def enroll_approver(
    approvers: Mapping[str, str], approver: str, secret: str, *, engine: Any = None, cost: Cost = DEFAULT_COST
) -> Enrolment:
    """A credential for ``approver``, refused when another approver is enrolled with the same secret."""
    from dc.audit import append, audited

    check_name(approver)
    check_secret(secret)
    for other, text in approvers.items():
        if other != approver and holds(parse_credential(text), secret):
            raise UsageError(
                N_("this secret is already enrolled for '{other}': each approver enrolls their own"), other=other
            )
    credential = enroll(secret, cost)
    previous = credential_of(approvers, approver)
    seq = None
    if engine is not None:
        details = {"credential": credential.id, "replaces": previous.id if previous else None, "os_user": os_user()}
        entry = audited(
            engine,
            lambda conn: append(conn, actor=os_user(), action="approver.enrolled", subject=approver, details=details),
        )
        seq = entry.seq
    return Enrolment(approver, credential.text(), credential.id, previous.id if previous else None, seq)


def check_approver(approvers: Mapping[str, str], approver: str, secret: str | None) -> str:
    """The credential id when ``secret`` is ``approver``'s (exit 3 otherwise); records nothing."""
    return prove(approvers, approver, secret, {"action": "check"}).credential
