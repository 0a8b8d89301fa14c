"""Key slots: the master key wrapped once per operator passphrase (or escrow secret).

Several operators each hold their own passphrase; rotating one never re-encrypts data. A slot
stores Argon2id parameters, a salt and the wrapped master key; the wrapping binds the
repository id, the slot id and the SHA-256 of the repository's ``config`` object, so a slot
copied to another repository, or a tampered config, fails to open.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import secrets
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from backup.backend import Backend, ObjectNotFound
from backup.crypto import KEY_BYTES, NONCE_BYTES, MasterKey
from backup.errors import CorruptObject, RepositoryError, WrongPassword

KEYS_PREFIX = "keys/"

# RFC 9106 §4, second recommended option: 64 MiB, 3 passes, 4 lanes (~0.2 s here).
DEFAULT_KDF = {"memory_kib": 65536, "iterations": 3, "lanes": 4}
_MIN_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}


@dataclass(frozen=True)
class KeySlot:
    id: str
    kind: str
    label: str
    host: str
    created: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


#: OpenSSL's Argon2id with several lanes deadlocks (or fails with MemoryError) when two threads
#: derive at once — ``bcpctl serve`` unlocks repositories from parallel jobs. One at a time
#: costs ~0.2 s of waiting per concurrent unlock; a hung scheduler costs the RPO.
_KDF_LOCK = threading.Lock()


def _kek(secret: bytes, salt: bytes, kdf: dict[str, int]) -> bytes:
    with _KDF_LOCK:
        return Argon2id(
            salt=salt, length=KEY_BYTES, iterations=kdf["iterations"], lanes=kdf["lanes"], memory_cost=kdf["memory_kib"]
        ).derive(secret)


def _aad(repo_id: str, slot_id: str) -> bytes:
    return f"bcpctl/v1/key-slot/{repo_id}/{slot_id}".encode()


def wrap(
    master: MasterKey,
    secret: bytes,
    *,
    repo_id: str,
    config_digest: bytes,
    kind: str = "passphrase",
    label: str = "",
    kdf: dict[str, int] | None = None,
) -> tuple[str, bytes]:
    """A new slot for ``secret``; returns ``(slot_id, slot_bytes)``."""
    kdf = dict(kdf or DEFAULT_KDF)
    slot_id = secrets.token_hex(8)
    salt = os.urandom(16)
    nonce = os.urandom(NONCE_BYTES)
    payload = master.to_bytes() + config_digest
    wrapped = nonce + AESGCM(_kek(secret, salt, kdf)).encrypt(nonce, payload, _aad(repo_id, slot_id))
    doc = {
        "version": 1,
        "id": slot_id,
        "kind": kind,
        "label": label or _default_label(),
        "host": socket.gethostname(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "kdf": {"name": "argon2id", "salt": _b64(salt), **kdf},
        "wrapped": _b64(wrapped),
    }
    return slot_id, json.dumps(doc, sort_keys=True).encode()


def _default_label() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "operator"


def _parse(raw: bytes, key: str) -> dict:
    try:
        doc = json.loads(raw)
        kdf = doc["kdf"]
        if kdf["name"] != "argon2id":
            raise ValueError("unknown kdf")
        for name, floor in _MIN_KDF.items():
            # A slot with absurdly weak (or absurdly large) parameters is hostile or broken.
            if not floor <= int(kdf[name]) <= 4 * 1024 * 1024:
                raise ValueError(f"kdf {name} out of range")
        _unb64(kdf["salt"])
        _unb64(doc["wrapped"])
        return doc
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptObject(f"key slot {key} is unreadable ({exc})") from None


def list_slots(backend: Backend) -> list[KeySlot]:
    slots = []
    for info in sorted(backend.list(KEYS_PREFIX), key=lambda i: i.key):
        doc = _parse(backend.load(info.key), info.key)
        slots.append(KeySlot(doc["id"], doc["kind"], doc.get("label", ""), doc.get("host", ""), doc.get("created", "")))
    return slots


def unwrap(
    backend: Backend, secret: bytes, *, repo_id: str, config_digest: bytes, kinds: Iterable[str] = ("passphrase",)
) -> tuple[MasterKey, str]:
    """Try every slot of an allowed kind; return the master key and the slot that opened it."""
    keys = sorted(i.key for i in backend.list(KEYS_PREFIX))
    if not keys:
        raise RepositoryError(f"repository {backend.url} has no key slots")
    wanted = set(kinds)
    for key in keys:
        try:
            doc = _parse(backend.load(key), key)
        except ObjectNotFound:
            continue  # removed concurrently
        if doc["kind"] not in wanted:
            continue
        kdf = {k: int(doc["kdf"][k]) for k in DEFAULT_KDF}
        wrapped = _unb64(doc["wrapped"])
        kek = _kek(secret, _unb64(doc["kdf"]["salt"]), kdf)
        try:
            payload = AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(repo_id, doc["id"]))
        except InvalidTag:
            continue
        if not secrets.compare_digest(payload[-32:], config_digest):
            raise CorruptObject(
                f"the repository config of {backend.url} was modified after key slot {doc['id']} was made"
            )
        return MasterKey.from_bytes(payload[:-32]), doc["id"]
    raise WrongPassword(f"wrong passphrase: no key slot of {backend.url} opens with it")


def config_digest(config_bytes: bytes) -> bytes:
    return hashlib.sha256(config_bytes).digest()
