"""Creating and reading a repository: its config, the unlocked :class:`Repository`, its objects.

Commands open one through :mod:`backup.opening` (Borg's ``with_repository``), which unlocks a
key slot, syncs the index cache and re-signs the manifest on close.

Repository layout on any backend::

    config                  plain JSON: format, id, chunker and pack parameters
    keys/<slot>             key slots (master key wrapped per passphrase / escrow)
    data/<xx>/<sha256>      data packs
    meta/<xx>/<sha256>      metadata (tree) packs
    index/<sha256>          sealed index files
    snapshots/<sha256>      sealed snapshots — each one a commit, written last
    tombstones/<sha256>     prune's phase-one marks
    locks/prune             prune's exclusive lease
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backup import compress
from backup.cache import BlobCache, Location
from backup.crypto import MasterKey
from backup.errors import CorruptObject, NotARepository, RepositoryError
from backup.index import INDEX_PREFIX, IndexFile, decode_index
from backup.keys import config_digest, wrap
from backup.kindnames import noun
from backup.manifeststate import Journal
from backup.objectsize import (
    MAX_TREE_BLOB,
    SEAL_OVERHEAD,
    OversizedObject,
    largest,
    load_whole,
    pack_bound,
    refuse_oversized,
)
from backup.pack import BLOB_DATA, BLOB_TREE, PACK_DIRS, BlobEntry, decrypt_blob, pack_key
from backup.packcache import PackCache
from backup.slotformat import DEFAULT_KDF
from backup.slotscan import SlotProblem
from dc.errors import N_, Message
from storage.backend import Backend
from storage.errors import NotARegularFile, ObjectNotFound

CONFIG_KEY = "config"
SNAPSHOT_PREFIX = "snapshots/"
FORMAT = "bcpctl-repository"
VERSION = 1


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC 2020 parameters. pyfastcdc's real average is ``avg + min``."""

    avg: int = 768 * 1024
    min: int = 256 * 1024
    max: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    id: str
    created: str
    chunker: ChunkerParams
    pack_size: int

    @classmethod
    def parse(cls, raw: bytes, where: str) -> RepoConfig:
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise ValueError("not a bcpctl repository config")
            if doc.get("version") != VERSION:
                raise ValueError(f"unsupported repository version {doc.get('version')}")
            chunker = ChunkerParams(**doc["chunker"])
            if not 64 <= chunker.min <= chunker.avg <= chunker.max <= 16 * 1024 * 1024:
                raise ValueError("chunker parameters out of range")
            config = cls(str(doc["id"]), str(doc["created"]), chunker, int(doc["pack_size"]))
            bytes.fromhex(config.id)
        except (ValueError, KeyError, TypeError) as exc:
            raise NotARepository(N_("{where}: {exc}"), where=where, exc=exc) from None
        return config

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "id": self.id,
            "created": self.created,
            "chunker": {"avg": self.chunker.avg, "min": self.chunker.min, "max": self.chunker.max},
            "pack_size": self.pack_size,
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode()


class Repository:
    """An unlocked repository. Thread-safe for reads and for one :class:`BlobWriter` at a time."""

    def __init__(
        self, backend: Backend, config: RepoConfig, config_raw: bytes, master: MasterKey, slot_id: str, cache: BlobCache
    ) -> None:
        self.backend = backend
        self.config = config
        self.config_raw = config_raw
        self.master = master
        self.slot_id = slot_id
        self.cache = cache
        self.repo_id = bytes.fromhex(config.id)
        self.broken_indexes: dict[str, str] = {}
        #: objects under keys/ skipped while unlocking; the command reports them
        self.key_problems: list[SlotProblem] = []
        #: other objects a command passed over (key -> why); the command reports them
        self.skipped_objects: dict[str, str] = {}
        #: key slots this session added: the manifest signs them (with the one it unlocked with)
        self.added_slots: set[str] = set()
        #: set by anything that changes the committed state (snapshots, forget, prune, key slots);
        #: the opener re-signs the repository manifest on close so the offsite can trust it.
        self.state_changed = False
        #: what this object committed since its last signature (format 2 signs exactly that)
        self.journal = Journal()
        self._ciphers: dict[bytes, AESGCM] = {}
        self._ciphers_lock = threading.Lock()
        # Remote storage: fetch whole packs once instead of one request per blob.
        self._packs = None if backend.capabilities.cheap_ranges else PackCache(backend, self.pack_bound)

    # -- object sizes -------------------------------------------------------------------------

    def pack_bound(self, blob_type: int) -> int:
        """The largest pack of this type a genuine writer of this repository stores."""
        blob_max = self.config.chunker.max if blob_type == BLOB_DATA else MAX_TREE_BLOB
        return pack_bound(self.config.pack_size, blob_max)

    @property
    def largest_object(self) -> int:
        """The largest object of any kind here: what may be read to find out what an object is."""
        return largest(self.config.pack_size)

    def load_pack(self, key: str) -> bytes:
        """A whole pack, if its size is one a genuine pack of its directory can have."""
        blob_type = next((t for t, d in PACK_DIRS.items() if key.startswith(d + "/")), BLOB_TREE)
        return load_whole(self.backend, key, "pack", bound=self.pack_bound(blob_type))

    def load_any(self, key: str, *, size: int | None = None) -> bytes:
        """An object of unknown kind (a stray, a moved object), read whole if it can be genuine."""
        return load_whole(self.backend, key, "object", size=size, bound=self.largest_object)

    # -- sealed objects (index files, snapshots, tombstones) ------------------------------

    def _aad(self, kind: str) -> bytes:
        return f"bcpctl/v1/{kind}".encode() + self.repo_id

    def save_sealed(self, prefix: str, kind: str, payload: bytes) -> str:
        """Encrypt, name by SHA-256 of the stored bytes, store under ``prefix``; return the name."""
        refuse_oversized(Message(N_("this {kind}"), kind=noun(kind)), kind, len(payload) + SEAL_OVERHEAD)
        sealed = self.master.seal(payload, self._aad(kind))
        name = hashlib.sha256(sealed).hexdigest()
        self.backend.save(prefix + name, sealed)
        return name

    def load_sealed(self, prefix: str, kind: str, name: str, *, size: int | None = None) -> bytes:
        """``size``: what a listing just said the object holds (saves a ``stat``)."""
        key = prefix + name
        data = load_whole(self.backend, key, kind, size=size)
        if hashlib.sha256(data).hexdigest() != name:
            raise CorruptObject(N_("{key} does not match its name (corrupted or truncated)"), key=key)
        return self.master.open(data, self._aad(kind), key)

    # -- index ------------------------------------------------------------------------------

    def load_index(self, name: str) -> IndexFile:
        return decode_index(self.load_sealed(INDEX_PREFIX, "index", name), INDEX_PREFIX + name)

    def index_names(self) -> set[str]:
        return {info.key.removeprefix(INDEX_PREFIX) for info in self.backend.list(INDEX_PREFIX)}

    def sync_index(self) -> dict[str, str]:
        """Bring the local cache in line with the repository's index files."""
        self.broken_indexes = self.cache.sync(self.index_names, self.load_index)
        return self.broken_indexes

    # -- blobs ------------------------------------------------------------------------------

    def _cipher(self, salt: bytes) -> AESGCM:
        with self._ciphers_lock:
            cipher = self._ciphers.get(salt)
            if cipher is None:
                if len(self._ciphers) > 256:
                    self._ciphers.clear()
                cipher = self._ciphers[salt] = self.master.pack_cipher(salt)
            return cipher

    def cipher_for(self, salt: bytes) -> AESGCM:
        """The AES-GCM cipher of the pack with this salt (cached: HKDF per blob would cost more than GCM)."""
        return self._cipher(salt)

    def read_blob(self, chunk_id: bytes, *, check_id: bool = True) -> bytes:
        """A blob's plaintext, authenticated and (unless the caller verifies the bytes itself,
        as restore does with each file's SHA-256) checked against its keyed id.

        If a copy is damaged and the repository holds another (a repack, or two backups that
        stored the same chunk concurrently), the other copy is used.
        """
        copies = self.cache.locations(chunk_id)
        if not copies:
            raise CorruptObject(
                N_("blob {chunk_id} is not in any index (missing pack or index)"), chunk_id=chunk_id.hex()[:16]
            )
        errors: list[CorruptObject] = []
        for location in copies:
            try:
                return self.read_blob_at(chunk_id, location, check_id=check_id)
            except CorruptObject as exc:
                errors.append(exc)
        raise errors[0]

    def read_blob_at(self, chunk_id: bytes, loc: Location, *, check_id: bool = True) -> bytes:
        key = pack_key(loc.pack, loc.blob_type)
        if loc.offset + loc.length > self.pack_bound(loc.blob_type):
            # The index is authenticated, but the local cache it was copied into is not.
            raise CorruptObject(
                N_("blob {chunk_id}: its index record places it past the end of any {key}"),
                chunk_id=chunk_id.hex()[:16],
                key=key,
            )
        if self._packs is not None:
            sealed = self._packs.read(key, loc.offset, loc.length)
        else:
            try:
                sealed = self.backend.load(key, loc.offset, loc.length)
            except ObjectNotFound:
                raise CorruptObject(
                    N_("pack {key} holding blob {chunk_id} is missing"), key=key, chunk_id=chunk_id.hex()[:16]
                ) from None
        entry = BlobEntry(chunk_id, loc.blob_type, loc.flags, loc.offset, loc.length, loc.raw_length)
        payload = decrypt_blob(self._cipher(loc.salt), self.repo_id, entry, sealed, key)
        data = compress.decode(
            payload, loc.flags, loc.raw_length, Message(N_("blob {blob} in {key}"), blob=chunk_id.hex()[:16], key=key)
        )
        if check_id and self.master.chunk_id_of(data) != chunk_id:
            raise CorruptObject(
                N_("blob {chunk_id} in {key} does not match its id"), chunk_id=chunk_id.hex()[:16], key=key
            )
        return data

    def close(self) -> None:
        if self._packs is not None:
            self._packs.close()
        self.cache.close()
        self.backend.close()


def read_config(backend: Backend) -> tuple[RepoConfig, bytes]:
    try:
        raw = load_whole(backend, CONFIG_KEY, "config")
    except OversizedObject as exc:
        raise NotARepository(
            N_("no usable bcpctl repository at {url}: {message_}"), url=backend.url, message_=exc
        ) from None
    except ObjectNotFound:
        raise NotARepository(N_("no bcpctl repository at {url} (run 'bcpctl repo init')"), url=backend.url) from None
    except NotARegularFile:
        raise NotARepository(
            N_("no bcpctl repository at {url}: its {CONFIG_KEY} is not a regular file"),
            url=backend.url,
            CONFIG_KEY=CONFIG_KEY,
        ) from None
    return RepoConfig.parse(raw, f"{backend.url}/{CONFIG_KEY}"), raw


@dataclass(frozen=True)
class Created:
    """A repository just created: what :func:`backup.opening.init_repository` signs its first manifest with."""

    config: RepoConfig
    raw: bytes
    master: MasterKey
    slot_id: str
    slot: bytes


def create_repository(
    backend: Backend,
    password: str,
    *,
    chunker: ChunkerParams | None = None,
    pack_size: int = 16 * 1024 * 1024,
    kdf: dict[str, int] | None = None,
) -> Created:
    """Create the config and the first key slot. Refuses an existing repository."""
    try:
        backend.stat(CONFIG_KEY)
    except ObjectNotFound:
        pass
    else:
        raise RepositoryError(N_("a repository already exists at {url}; nothing was changed"), url=backend.url)
    config = RepoConfig(
        id=secrets.token_hex(16),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        chunker=chunker or ChunkerParams(),
        pack_size=pack_size,
    )
    raw = config.to_bytes()
    master = MasterKey.generate()
    slot_id, slot = wrap(
        master, password.encode(), repo_id=config.id, config_digest=config_digest(raw), kdf=kdf or DEFAULT_KDF
    )
    # The key slot first: a config without a key would be a repository nobody can open.
    backend.save(f"keys/{slot_id}", slot)
    if not backend.save_new(CONFIG_KEY, raw):
        backend.remove(f"keys/{slot_id}")
        raise RepositoryError(N_("another process created a repository at {url} concurrently"), url=backend.url)
    return Created(config, raw, master, slot_id, slot)
