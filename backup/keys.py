"""Key slots: the master key wrapped once per operator passphrase (or escrow secret).

Several operators each hold their own passphrase; rotating one never re-encrypts data. A slot
stores Argon2id parameters, a salt and the wrapped master key; the wrapping binds the
repository id, the slot id and the SHA-256 of the repository's ``config`` object, so a slot
copied to another repository, or a tampered config, fails to open.

Slots are independent (DESIGN "Security rules"): whoever can write ``keys/`` — a careless
operator, a disk error, an attacker holding storage credentials — must not be able to lock
the other key holders out with one object. So every object under ``keys/`` is read on its
own; one that is not a well-formed slot (bad JSON, a stray file, one that vanished, absurd
KDF parameters, an oversized blob) is skipped and returned as a
:class:`~backup.slotscan.SlotProblem` for the caller to report, and the remaining slots are
still tried. The work one unlock can cost is bounded: KDF memory and passes are capped,
objects larger than a slot ever is are not loaded, at most
:data:`~backup.slotscan.MAX_SLOT_OBJECTS` objects are examined, and the derivations an
unlock runs are bounded in an order no attacker decides (:mod:`backup.slotorder`): the slots
the signed manifest or this machine vouches for first, the others cheapest first in an order
keyed with the secret being tried.

Key-file slots (kind ``keyfile``, :mod:`backup.keyfile`) are the one exception to Argon2id:
their secret is 32 random bytes a machine generated, not something a person chose, so no
guess can succeed however cheap each try is, and the key-encryption key is derived with HKDF
(RFC 5869) instead. Stretching protects a low-entropy secret against offline guessing; it adds
nothing to a 256-bit one and costs every ``wal push`` its unlock. The kind and the derivation
are tied both ways (an HKDF slot that is not a key-file slot, or the reverse, is malformed),
and only an unlock that asks for key-file slots tries them, so a passphrase is never put
through HKDF.

What cannot be told apart: a slot whose wrapped key or KDF parameters were altered fails
AES-GCM authentication exactly like a wrong passphrase does (the key-encryption key is
derived from the passphrase, so a failed tag says "this key does not open this ciphertext"
and nothing more). Only structural damage is reported as damage; the refusal says how
many objects were skipped so that an operator whose passphrase "stopped working" looks at
``bcpctl key list``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup.crypto import KEY_BYTES, NONCE_BYTES, MasterKey
from backup.errors import CorruptObject, RepositoryError, WrongPassword
from backup.slotformat import (
    CONFIG_DIGEST_BYTES,
    DEFAULT_KDF,
    HKDF_KDF,
    KEYFILE_KIND,
    KEYFILE_SECRET_BYTES,
    KEYS_PREFIX,
    MAX_SLOT_BYTES,
    ParsedSlot,
    b64,
    check_kdf,
)
from backup.slotorder import NO_SIGNED_SLOTS, SignedSlots, tiers
from backup.slotscan import SlotProblem, scan, skipped_note
from dc.errors import N_, Message
from dc.osuser import os_user
from storage.backend import Backend

_HKDF_INFO = b"bcpctl/v1/key-file-kek"


@dataclass(frozen=True)
class Unwrapped:
    master: MasterKey
    slot_id: str
    #: objects passed over on the way to the slot that opened
    skipped: tuple[SlotProblem, ...] = ()
    #: SHA-256 of the slot that opened (remembered, so this machine tries it first next time)
    slot_digest: str = ""
    #: the chain position of the manifest the unlock read, if signed with this key (0: format 1):
    #: stored before anything the opened repository writes (:attr:`backup.manifeststate.Journal.seen`)
    seen: int | None = None
    #: the SHA-256 of that manifest: ``seen`` is a floor only in a chain that still holds it
    seen_digest: str = ""


#: OpenSSL's Argon2id with several lanes deadlocks (or fails with MemoryError) when two threads
#: derive at once — ``bcpctl serve`` unlocks repositories from parallel jobs. One at a time
#: costs ~0.2 s of waiting per concurrent unlock; a hung scheduler costs the RPO.
_KDF_LOCK = threading.Lock()


def _kek(secret: bytes, salt: bytes, kdf: dict[str, int]) -> bytes:
    if not kdf:  # a key-file slot: the secret is already a uniformly random key
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_HKDF_INFO).derive(secret)
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
    """A new slot for ``secret``; returns ``(slot_id, slot_bytes)``.

    A ``keyfile`` slot derives with HKDF and takes no ``kdf``; its secret must be
    :data:`KEYFILE_SECRET_BYTES` bytes (a person's passphrase never gets an unstretched slot).
    """
    if kind == KEYFILE_KIND:
        if len(secret) != KEYFILE_SECRET_BYTES:
            raise ValueError(f"a key-file slot's secret is {KEYFILE_SECRET_BYTES} random bytes")
        kdf = {}
        kdf_doc: dict[str, Any] = {"name": HKDF_KDF}
    else:
        kdf = dict(kdf or DEFAULT_KDF)
        check_kdf(kdf)
        kdf_doc = {"name": "argon2id", **kdf}
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
        "kdf": {**kdf_doc, "salt": b64(salt)},
        "wrapped": b64(wrapped),
    }
    raw = json.dumps(doc, sort_keys=True).encode()
    if len(raw) > MAX_SLOT_BYTES:
        raise ValueError(f"a key slot label must keep the slot under {MAX_SLOT_BYTES} bytes")
    return slot_id, raw


def _default_label() -> str:
    return os_user()


def unwrap(
    backend: Backend,
    secret: bytes,
    *,
    repo_id: str,
    config_digest: bytes,
    kinds: Iterable[str] = ("passphrase",),
    refusal: str | None = None,
    signed: SignedSlots = NO_SIGNED_SLOTS,
) -> Unwrapped:
    """Try the usable slots of an allowed kind; the master key, the slot that opened, what was skipped.

    The slots ``signed`` names come first, then the others (see the module docstring).
    ``refusal`` is the message when no slot opens (default: a wrong passphrase).
    """
    slots, problems = scan(backend, signed, secret)
    if not slots and not problems:
        raise RepositoryError(N_("repository {url} has no key slots"), url=backend.url)
    wanted = set(kinds)
    candidates = [s for s in slots if s.info.kind in wanted]
    for tier in tiers(candidates, _identify, _work, signed, secret):
        chosen, untried = tier.bounded(_work)
        for slot in chosen:
            kek = _kek(secret, slot.salt, slot.kdf)
            try:
                payload = AESGCM(kek).decrypt(
                    slot.wrapped[:NONCE_BYTES], slot.wrapped[NONCE_BYTES:], _aad(repo_id, slot.info.id)
                )
            except InvalidTag:
                continue
            if not secrets.compare_digest(payload[-CONFIG_DIGEST_BYTES:], config_digest):
                raise CorruptObject(
                    N_("the repository config of {url} was modified after key slot {id} was made"),
                    url=backend.url,
                    id=slot.info.id,
                )
            master = MasterKey.from_bytes(payload[:-CONFIG_DIGEST_BYTES])
            return Unwrapped(master, slot.info.id, tuple(problems), slot.digest)
        if untried:
            problems.append(
                SlotProblem(
                    "",
                    Message(
                        N_(
                            "{count} more slot(s) not tried (the work of one unlock is bounded; "
                            "'bcpctl check' names slots the manifest does not sign)"
                        ),
                        count=untried,
                    ),
                )
            )
    message = refusal or Message(N_("wrong passphrase: no key slot of {url} opens with it"), url=backend.url)
    raise WrongPassword(N_("{refusal}{skipped}"), refusal=message, skipped=skipped_note(problems))


def _identify(slot: ParsedSlot) -> tuple[str, str]:
    return KEYS_PREFIX + slot.info.id, slot.digest


def _work(slot: ParsedSlot) -> int:
    if not slot.kdf:
        return 1  # HKDF: microseconds, but never free, so a flood of them is still bounded
    return slot.kdf["memory_kib"] * slot.kdf["iterations"]


def config_digest(config_bytes: bytes) -> bytes:
    return hashlib.sha256(config_bytes).digest()
