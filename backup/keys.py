"""Key slots: the master key wrapped once per operator passphrase (or escrow secret).

Several operators each hold their own passphrase; rotating one never re-encrypts data. A slot
stores Argon2id parameters, a salt and the wrapped master key; the wrapping binds the
repository id, the slot id and the SHA-256 of the repository's ``config`` object, so a slot
copied to another repository, or a tampered config, fails to open.

Slots are independent (DESIGN "Security rules"): whoever can write ``keys/`` — a careless
operator, a disk error, an attacker holding storage credentials — must not be able to lock
the other key holders out with one object. So every object under ``keys/`` is read on its
own; one that is not a well-formed slot (bad JSON, a stray file, one that vanished, absurd
KDF parameters, an oversized blob) is skipped and returned as a :class:`SlotProblem` for the
caller to report, and the remaining slots are still tried. The work one unlock can cost is
bounded: KDF memory and passes are capped, objects larger than a slot ever is are not
loaded, at most :data:`MAX_SLOT_OBJECTS` objects are examined, and the derivations an unlock
runs are bounded in an order no attacker decides (:mod:`backup.slotorder`): the slots the
signed manifest or this machine vouches for first, the others cheapest first in an order keyed
with the secret being tried.

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

import base64
import functools
import hashlib
import json
import os
import re
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

from backup.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES, MasterKey
from backup.errors import CorruptObject, RepositoryError, WrongPassword
from backup.slotorder import NO_SIGNED_SLOTS, SignedSlots, shuffle, tiers
from dc.errors import N_, Message, os_reason
from dc.osuser import os_user
from storage.backend import Backend, ObjectInfo
from storage.errors import ObjectNotFound, StorageError

KEYS_PREFIX = "keys/"

# RFC 9106 §4, second recommended option: 64 MiB, 3 passes, 4 lanes (~0.2 s here).
DEFAULT_KDF = {"memory_kib": 65536, "iterations": 3, "lanes": 4}
_MIN_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}
#: The parameters are read from storage, so an attacker chooses them: a slot asking for 4 GiB
#: would exhaust the host at every unlock. 1 GiB and 10 passes cover RFC 9106's first
#: recommendation scaled to the controllers this runs on.
_MAX_KDF = {"memory_kib": 1024 * 1024, "iterations": 10, "lanes": 16}
#: memory × passes (KiB): one derivation costs at most a few seconds (1 GiB × 4 passes).
_MAX_KDF_WORK = 4 * 1024 * 1024

#: A slot is ~600 bytes; a label is short. Larger objects are never loaded into memory.
MAX_SLOT_BYTES = 16 * 1024
#: Objects under keys/ examined per scan; more is a flood, reported, not read.
MAX_SLOT_OBJECTS = 256

#: the kind of slot whose secret is a machine-generated 256-bit key (backup/keyfile.py)
KEYFILE_KIND = "keyfile"
KEYFILE_SECRET_BYTES = 32
#: the derivation of key-file slots (see the module docstring); its only parameter is the salt
HKDF_KDF = "hkdf-sha256"
_HKDF_INFO = b"bcpctl/v1/key-file-kek"

_CONFIG_DIGEST_BYTES = 32
_WRAPPED_BYTES = NONCE_BYTES + (2 * KEY_BYTES + 8) + _CONFIG_DIGEST_BYTES + TAG_BYTES
_SLOT_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class KeySlot:
    id: str
    kind: str
    label: str
    host: str
    created: str


@dataclass(frozen=True)
class SlotProblem:
    """An object under ``keys/`` that is not a usable key slot, and why.

    ``name`` is the object's name below ``keys/``, made printable (control characters and
    undecodable bytes escaped) — what ``bcpctl key remove`` takes. Empty for a problem that
    concerns ``keys/`` as a whole (too many objects).
    """

    name: str
    problem: str


@dataclass(frozen=True)
class Unwrapped:
    master: MasterKey
    slot_id: str
    #: objects passed over on the way to the slot that opened
    skipped: tuple[SlotProblem, ...] = ()
    #: SHA-256 of the slot that opened (remembered, so this machine tries it first next time)
    slot_digest: str = ""


@dataclass(frozen=True)
class _Slot:
    info: KeySlot
    salt: bytes
    kdf: dict[str, int]
    wrapped: bytes
    #: SHA-256 of the stored object, as the signed manifest records it
    digest: str = ""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


def printable(name: str) -> str:
    """An object name safe for one line of a terminal or a JSON document.

    Local names may carry undecodable bytes (as surrogates) and control characters.
    """
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)


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
        _check_kdf(kdf)
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
        "kdf": {**kdf_doc, "salt": _b64(salt)},
        "wrapped": _b64(wrapped),
    }
    raw = json.dumps(doc, sort_keys=True).encode()
    if len(raw) > MAX_SLOT_BYTES:
        raise ValueError(f"a key slot label must keep the slot under {MAX_SLOT_BYTES} bytes")
    return slot_id, raw


def _default_label() -> str:
    return os_user()


def _check_kdf(kdf: dict[str, Any]) -> dict[str, int]:
    params = {}
    for name, floor in _MIN_KDF.items():
        value = kdf.get(name)
        if type(value) is not int:
            raise ValueError(Message(N_("kdf {name} is not an integer"), name=name))
        if not floor <= value <= _MAX_KDF[name]:
            raise ValueError(
                Message(
                    N_("kdf {name} {value} is outside {floor}..{top}"),
                    name=name,
                    value=value,
                    floor=floor,
                    top=_MAX_KDF[name],
                )
            )
        params[name] = value
    if params["memory_kib"] * params["iterations"] > _MAX_KDF_WORK:
        raise ValueError(Message(N_("kdf memory × iterations is too costly")))
    return params


def _parse(raw: bytes, name: str) -> _Slot:
    """A well-formed slot, or ``ValueError`` saying what is wrong with the object."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(Message(N_("not a key slot (not JSON)"))) from None
    if not isinstance(doc, dict):
        raise ValueError(Message(N_("not a key slot (not a JSON object)")))
    if doc.get("version") != 1:
        raise ValueError(Message(N_("unsupported key slot version {version!r}"), version=doc.get("version")))
    slot_id, kind = doc.get("id"), doc.get("kind")
    if not isinstance(slot_id, str) or not _SLOT_ID.fullmatch(slot_id):
        raise ValueError(Message(N_("slot id is missing or malformed")))
    if slot_id != name:
        raise ValueError(Message(N_("holds slot {slot_id} under another name"), slot_id=slot_id))
    if not isinstance(kind, str) or not kind:
        raise ValueError(Message(N_("slot kind is missing")))
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") not in ("argon2id", HKDF_KDF):
        raise ValueError(Message(N_("unknown kdf")))
    if (kdf["name"] == HKDF_KDF) != (kind == KEYFILE_KIND):
        # an unstretched slot for a passphrase would let whoever reads keys/ guess it cheaply
        raise ValueError(
            Message(
                N_("a {kind} slot with kdf {kdf}: only key-file slots derive with HKDF"), kind=kind, kdf=kdf["name"]
            )
        )
    params = _check_kdf(kdf) if kdf["name"] == "argon2id" else {}
    try:
        salt, wrapped = _unb64(kdf.get("salt")), _unb64(doc.get("wrapped"))
    except ValueError:
        raise ValueError(Message(N_("salt or wrapped key is not base64"))) from None
    if not 16 <= len(salt) <= 64:
        raise ValueError(Message(N_("kdf salt has the wrong length")))
    if len(wrapped) != _WRAPPED_BYTES:
        raise ValueError(
            Message(N_("wrapped key is {size} bytes, not {expected}"), size=len(wrapped), expected=_WRAPPED_BYTES)
        )
    label, host, created = (_text(doc.get(k)) for k in ("label", "host", "created"))
    return _Slot(KeySlot(slot_id, kind, label, host, created), salt, params, wrapped, hashlib.sha256(raw).hexdigest())


def _text(value: Any) -> str:
    """A descriptive field of a slot as stored, or empty when it is missing or not text."""
    return value if isinstance(value, str) else ""


def _scan(
    backend: Backend, signed: SignedSlots = NO_SIGNED_SLOTS, secret: bytes | None = None
) -> tuple[list[_Slot], list[SlotProblem]]:
    """Every well-formed slot and every other object, examined in :mod:`backup.slotorder`'s order.

    Without a ``secret`` (listing, not unlocking) the others come oldest first.
    """
    order = shuffle(secret)
    listing: list[ObjectInfo] = sorted(
        backend.list(KEYS_PREFIX), key=lambda i: (signed.rank(i.key), order(i.key), i.mtime, i.key)
    )
    slots: list[_Slot] = []
    problems: list[SlotProblem] = []
    for info in listing[:MAX_SLOT_OBJECTS]:
        name = info.key.removeprefix(KEYS_PREFIX)
        shown = printable(name)
        if info.size > MAX_SLOT_BYTES:
            problems.append(
                SlotProblem(shown, Message(N_("{size} bytes: far larger than a key slot, not read"), size=info.size))
            )
            continue
        try:
            raw = backend.load(info.key, 0, info.size)  # no more than was judged above
        except ObjectNotFound:
            problems.append(SlotProblem(shown, Message(N_("vanished while it was being read"))))
            continue
        except (StorageError, OSError) as exc:
            problems.append(SlotProblem(shown, Message(N_("cannot be read ({reason})"), reason=_reason(exc))))
            continue
        try:
            if len(raw) > MAX_SLOT_BYTES:
                raise ValueError(Message(N_("{size} bytes: far larger than a key slot"), size=len(raw)))
            slots.append(_parse(raw, name))
        except ValueError as exc:
            problems.append(SlotProblem(shown, exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)))
    if len(listing) > MAX_SLOT_OBJECTS:
        problems.append(
            SlotProblem(
                "",
                Message(
                    N_(
                        "keys/ holds {count} objects; only {limit} were examined (remove planted or "
                        "stray objects with 'bcpctl key remove')"
                    ),
                    count=len(listing),
                    limit=MAX_SLOT_OBJECTS,
                ),
            )
        )
    return slots, problems


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return os_reason(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def scan_slots(backend: Backend) -> tuple[list[KeySlot], list[SlotProblem]]:
    """The usable key slots (oldest first) and what is wrong with every other object in ``keys/``.

    For ``check`` and ``key list``: needs no key, reads each object once, never raises for
    one bad object.
    """
    slots, problems, _named = scan_signed_slots(backend, NO_SIGNED_SLOTS)
    return slots, problems


def scan_signed_slots(backend: Backend, signed: SignedSlots) -> tuple[list[KeySlot], list[SlotProblem], set[str]]:
    """:func:`scan_slots` with the signed ones first, and the ids of the slots ``signed`` names (same bytes)."""
    slots, problems = _scan(backend, signed)
    named = {s.info.id for s in slots if signed.names(KEYS_PREFIX + s.info.id, s.digest)}
    return [s.info for s in slots], problems, named


def slot_digests(backend: Backend) -> dict[str, str]:
    """``keys/<id>`` → SHA-256 of every well-formed slot (what a manifest signs)."""
    return {KEYS_PREFIX + slot.info.id: slot.digest for slot in _scan(backend)[0]}


def list_slots(backend: Backend) -> list[KeySlot]:
    return scan_slots(backend)[0]


def skipped_note(problems: Iterable[SlotProblem]) -> str:
    """The tail of a refusal when objects were passed over: tampering looks like a wrong key."""
    problems = list(problems)
    damaged = sum(1 for p in problems if p.name)
    parts = [p.problem for p in problems if not p.name]
    if damaged:
        parts.insert(
            0,
            Message(
                N_(
                    "{count} unreadable object(s) in keys/ were skipped; "
                    "a damaged slot cannot be told from a wrong passphrase"
                ),
                count=damaged,
            ),
        )
    if not parts:
        return ""
    return Message(N_(" ({parts}; see 'bcpctl key list')"), parts=functools.reduce(_then, parts))


def _then(first: str, then: str) -> Message:
    return Message(N_("{first}; {then}"), first=first, then=then)


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
    slots, problems = _scan(backend, signed, secret)
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
            if not secrets.compare_digest(payload[-_CONFIG_DIGEST_BYTES:], config_digest):
                raise CorruptObject(
                    N_("the repository config of {url} was modified after key slot {id} was made"),
                    url=backend.url,
                    id=slot.info.id,
                )
            master = MasterKey.from_bytes(payload[:-_CONFIG_DIGEST_BYTES])
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


def _identify(slot: _Slot) -> tuple[str, str]:
    return KEYS_PREFIX + slot.info.id, slot.digest


def _work(slot: _Slot) -> int:
    if not slot.kdf:
        return 1  # HKDF: microseconds, but never free, so a flood of them is still bounded
    return slot.kdf["memory_kib"] * slot.kdf["iterations"]


def config_digest(config_bytes: bytes) -> bytes:
    return hashlib.sha256(config_bytes).digest()
