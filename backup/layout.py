"""Where each kind of object belongs in a repository, and what an object found elsewhere is.

``check`` and ``repair`` share this. Most objects are named by the SHA-256 of their bytes, so
an object that was moved keeps a name that proves its content, and its bytes say what it is:
a pack's encrypted header names its blob type, a sealed object authenticates only as the kind
it was sealed as, key slots and the manifest are JSON documents that name themselves. That is
enough to put a moved object back where it belongs without trusting its current place, and
to tell a harmless copy or stray file from damage. How large each kind can be — and so whether
an object may be read at all — is :mod:`backup.objectsize`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from backup.errors import CorruptObject
from backup.index import INDEX_PREFIX
from backup.manifest import MANIFEST_KEY
from backup.manifeststate import CHAIN_PREFIX, link_key
from backup.pack import MAGIC, PACK_DIRS, pack_key, parse_pack
from backup.prune import LEASE_KEY, TOMBSTONE_PREFIX
from backup.repository import CONFIG_KEY, SNAPSHOT_PREFIX, Repository
from backup.slotformat import KEYS_PREFIX
from backup.walarchive import WAL_KIND, WAL_PREFIX
from dc.errors import BcpError
from storage.backend import ObjectInfo

LOCKS_PREFIX = LEASE_KEY.rsplit("/", 1)[0] + "/"

#: sealed object kinds (the associated data they authenticate with) and where each one lives
SEALED_HOMES = {"index": INDEX_PREFIX, "snapshot": SNAPSHOT_PREFIX, "tombstone": TOMBSTONE_PREFIX}

#: what :func:`identify` calls a pack whose header does not authenticate (or lists no blob)
DAMAGED_PACK = "damaged pack"
PACK_KINDS = frozenset(f"{directory} pack" for directory in PACK_DIRS.values())

_OBJECT_NAME = re.compile(r"[0-9a-f]{64}")
_PACK_PREFIXES = tuple(directory + "/" for directory in PACK_DIRS.values())


def is_object_name(name: str) -> bool:
    """A content-addressed name: 64 lowercase hex digits."""
    return _OBJECT_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Place:
    """What a key's location says an object is (before reading it)."""

    key: str
    #: "config", "manifest", "manifest link", "key slot", "lock", a sealed kind, "data pack", "meta pack", or None
    kind: str | None
    name: str
    #: the name and directory have the shape that kind needs (64-hex name, pack fan-out)
    well_formed: bool


def place_of(key: str) -> Place:
    name = key.rsplit("/", 1)[-1]
    if key in (CONFIG_KEY, MANIFEST_KEY):
        return Place(key, key, name, True)
    if key.startswith(CHAIN_PREFIX):  # format 2's signed links, verified by the manifest's readers
        return Place(key, "manifest link", name, key == link_key(int(name)) if name.isdigit() else False)
    if key.startswith(KEYS_PREFIX):
        return Place(key, "key slot", name, key.count("/") == 1)
    if key.startswith(LOCKS_PREFIX):
        return Place(key, "lock", name, key.count("/") == 1)
    for kind, prefix in SEALED_HOMES.items():
        if key.startswith(prefix):
            return Place(key, kind, name, key.count("/") == 1 and is_object_name(name))
    if key.startswith(WAL_PREFIX):
        return Place(key, WAL_KIND, name, key.count("/") == 3 and is_object_name(name))
    for blob_type, directory in PACK_DIRS.items():
        if key.startswith(directory + "/"):
            shaped = is_object_name(name) and key == pack_key(name, blob_type)
            return Place(key, f"{directory} pack", name, shaped)
    return Place(key, None, name, False)


def is_pack_key(key: str) -> bool:
    return key.startswith(_PACK_PREFIXES)


@dataclass(frozen=True)
class Identity:
    """What an object's bytes say it is, and where it belongs."""

    #: "data pack", "meta pack", "damaged pack", a sealed kind, "key slot", "manifest", "config",
    #: "lock", "JSON document", or None when the bytes are nothing bcpctl wrote (damage or a stray)
    kind: str | None
    #: the key it belongs under (None when unknown, or for kinds that have no single home)
    home: str | None
    #: SHA-256 of the bytes equals the object's name (always False for fixed-name kinds)
    named_by_content: bool
    #: another object holds these very bytes at ``home``
    copy_of: str | None = None
    #: for packs: the blob entries of the header (verified), else empty
    blob_count: int = 0


def identify(repo: Repository, key: str, data: bytes, listing: Mapping[str, ObjectInfo]) -> Identity:
    """Say what the object stored at ``key`` is from its bytes alone.

    A pack is recognised by its authenticated header; a sealed object by trying the kinds it
    could authenticate as (the name must be its SHA-256, as every sealed object's is, or it is
    compared with the object of that name); JSON documents by the fields bcpctl writes.
    """
    name = key.rsplit("/", 1)[-1]
    digest = hashlib.sha256(data).hexdigest()
    intact = digest == name

    def copy_at(home: str | None) -> str | None:
        if home is None or home == key or home not in listing:
            return None
        return home if hashlib.sha256(repo.load_any(home)).hexdigest() == digest else None

    if data[: len(MAGIC)] == MAGIC:
        try:
            _salt, entries = parse_pack(repo.master, repo.repo_id, data, key)
        except CorruptObject:
            return Identity(DAMAGED_PACK, None, intact)
        if entries:
            home = pack_key(digest, entries[0].type)
            return Identity(f"{PACK_DIRS[entries[0].type]} pack", home, intact, copy_at(home), len(entries))
        return Identity(DAMAGED_PACK, None, intact)
    for kind, prefix in SEALED_HOMES.items():
        home = prefix + digest
        if intact:
            try:
                repo.master.open(data, repo._aad(kind), key)
            except CorruptObject:
                continue
            return Identity(kind, home, True, copy_at(home))
        copy = copy_at(home)
        if copy is not None:
            return Identity(kind, home, False, copy)
    return _identify_document(key, data, listing, repo)


def _identify_document(key: str, data: bytes, listing: Mapping[str, ObjectInfo], repo: Repository) -> Identity:
    name = key.rsplit("/", 1)[-1]
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return Identity(None, None, False)
    if not isinstance(doc, dict):
        return Identity(None, None, False)
    if "wrapped" in doc and "kdf" in doc and isinstance(doc.get("id"), str):
        home = KEYS_PREFIX + doc["id"]
        same = home in listing and home != key and repo.load_any(home) == data
        return Identity("key slot", home, doc["id"] == name, home if same else None)
    if doc.get("format") == "bcpctl-manifest":
        return Identity("manifest", MANIFEST_KEY, False, MANIFEST_KEY if _same(repo, MANIFEST_KEY, key, data) else None)
    if doc.get("format") == "bcpctl-repository":
        return Identity("config", CONFIG_KEY, False, CONFIG_KEY if _same(repo, CONFIG_KEY, key, data) else None)
    if {"host", "pid"} <= doc.keys():
        return Identity("lock", None, False)
    return Identity("JSON document", None, False)


def _same(repo: Repository, home: str, key: str, data: bytes) -> bool:
    if home == key:
        return False
    try:
        return repo.load_any(home) == data
    except BcpError:  # absent or unreadable: simply not a copy
        return False
