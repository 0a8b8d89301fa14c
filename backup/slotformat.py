"""The stored form of a key slot under ``keys/``: its limits, its fields, and how one is judged well-formed.

The bytes of a slot are read from storage, so whoever can write ``keys/`` chooses them: every
field is checked here before anything derives a key from it (:mod:`backup.keys`), and a slot
that fails says why in one line (:mod:`backup.slotscan` reports it and goes on).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from backup.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from dc.errors import N_, Message

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

#: the kind of slot whose secret is a machine-generated 256-bit key (backup/keyfile.py)
KEYFILE_KIND = "keyfile"
KEYFILE_SECRET_BYTES = 32
#: the derivation of key-file slots (see :mod:`backup.keys`); its only parameter is the salt
HKDF_KDF = "hkdf-sha256"

CONFIG_DIGEST_BYTES = 32
_WRAPPED_BYTES = NONCE_BYTES + (2 * KEY_BYTES + 8) + CONFIG_DIGEST_BYTES + TAG_BYTES
_SLOT_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class KeySlot:
    id: str
    kind: str
    label: str
    host: str
    created: str


@dataclass(frozen=True)
class ParsedSlot:
    info: KeySlot
    salt: bytes
    kdf: dict[str, int]
    wrapped: bytes
    #: SHA-256 of the stored object, as the signed manifest records it
    digest: str = ""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


def check_kdf(kdf: dict[str, Any]) -> dict[str, int]:
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


def parse_slot(raw: bytes, name: str) -> ParsedSlot:
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
    params = check_kdf(kdf) if kdf["name"] == "argon2id" else {}
    try:
        salt, wrapped = unb64(kdf.get("salt")), unb64(doc.get("wrapped"))
    except ValueError:
        raise ValueError(Message(N_("salt or wrapped key is not base64"))) from None
    if not 16 <= len(salt) <= 64:
        raise ValueError(Message(N_("kdf salt has the wrong length")))
    if len(wrapped) != _WRAPPED_BYTES:
        raise ValueError(
            Message(N_("wrapped key is {size} bytes, not {expected}"), size=len(wrapped), expected=_WRAPPED_BYTES)
        )
    label, host, created = (_text(doc.get(k)) for k in ("label", "host", "created"))
    return ParsedSlot(
        KeySlot(slot_id, kind, label, host, created), salt, params, wrapped, hashlib.sha256(raw).hexdigest()
    )


def _text(value: Any) -> str:
    """A descriptive field of a slot as stored, or empty when it is missing or not text."""
    return value if isinstance(value, str) else ""
