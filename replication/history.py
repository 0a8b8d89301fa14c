"""A read-only view of a versioned repository: its last good state, or the state at a time.

The S3 credentials the replicator holds can PUT over any object and DELETE it without a
version id. Where the bucket keeps versions (Object Lock turns versioning on) neither
destroys anything: the PUT adds a version and the DELETE a delete marker, while the locked
versions stay. A plain read sees only the newest version, so without this view one stolen
credential makes the offsite copy unrestorable although every byte is still there.

Which version of each key the view serves:

* the candidates are the key's versions and delete markers not newer than ``as_of`` (all of
  them without it): with ``--as-of`` the view is the whole bucket as it was then, one
  consistent state in which objects added later do not exist;
* content-addressed objects (packs, indexes, snapshots) verify themselves: when the newest
  candidate is a delete marker, or the candidates hold different bytes (another size or
  entity tag), the newest version whose bytes hash to the name is served;
* the signed manifest verifies itself too: the newest candidate whose signature verifies
  (with the repository's key once :meth:`HistoryView.trust` names it) and whose sequence is
  not below one already accepted. Only the newest :data:`MANIFEST_TRIES` candidates are
  tried, so a flood of bad versions costs bounded time (``--as-of`` reaches past it);
* a format-2 manifest's links (``manifests/``) verify themselves as well: the newest version
  signed for its position is served, and the manifest's chain is read through the view;
* config and key slots carry no checksum of their own; the chosen manifest signs their
  hashes, so the newest candidate with the signed hash is served. Without a signed hash the
  newest candidate is (a wrong one then fails to unlock: ``--as-of`` is the way back).

Listing shows each key whose newest candidate is a version, plus each key the chosen
manifest needs whose newest candidate is a delete marker. A delete marker over an object the
manifest does not need is a legitimate deletion (retention, the delayed deletion offsite) and
stays deleted, so forgotten snapshots do not come back.

The version list is read once, at the first use: the view is one state even while
replication writes. Credentials that may not list versions get plain reads of the current
versions and a note saying so (an ``--as-of`` view fails instead: it has nothing to show).

Whatever is served from a version other than the newest is recorded in
:attr:`HistoryView.recoveries`, for the command to warn, ``verify-offsite`` to report and
``replicate --repair`` to put back. Writes are refused.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from backup.manifest import MANIFEST_KEY, Manifest, ManifestInvalid, verify_manifest
from backup.manifestchain import link_reader, verify_link
from backup.manifeststate import CHAIN_PREFIX, link_key
from backup.objectsize import MAX_BYTES
from backup.repository import CONFIG_KEY
from dc.errors import N_, Message, UsageError, message_of
from storage.backend import Backend, Capabilities, ObjectInfo, ObjectVersion
from storage.capabilities import Versioned, versioned
from storage.errors import AccessDenied, ObjectNotFound
from storage.naming import content_name

#: how many candidate versions of the manifest are read before the view gives up on it
MANIFEST_TRIES = 100
#: objects larger than this are hashed in ranged pieces, so memory stays bounded
PIECE = 16 * 1024 * 1024


def sha256_pieces(load: Callable[[int, int | None], bytes], size: int) -> tuple[str, int]:
    """SHA-256 and length of an object of about ``size`` bytes, read by ``load(offset, length)``.

    A small object is read whole (``length`` ``None``), so a size that the listing got wrong
    shows as a wrong hash; a large one in bounded pieces, so memory stays bounded per worker.
    """
    if size <= PIECE:
        data = load(0, None)
        return hashlib.sha256(data).hexdigest(), len(data)
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        piece = load(offset, min(PIECE, size - offset))
        digest.update(piece)
        offset += len(piece)
    return digest.hexdigest(), offset


@dataclass(frozen=True)
class Recovery:
    """An object served from an older version because the newest one is wrong or deleted."""

    key: str
    #: ``overwritten`` (the newest version has other bytes) | ``deleted`` (a delete marker)
    kind: str
    version_id: str
    #: when the storage wrote the version served (ISO 8601)
    written: str

    def describe(self) -> str:
        current = "is a delete marker" if self.kind == "deleted" else "has the wrong bytes"
        return f"the current version {current}; version {self.version_id} written {self.written} is intact"


#: the versions and delete markers of one key, newest first (an alias: ``list`` is a method below)
Versions = list[ObjectVersion]


def _same_bytes(versions: Versions) -> bool:
    """Equal size and entity tag: the same bytes (an MD5 second preimage is out of reach)."""
    return len({(v.size, v.etag) for v in versions}) == 1 and all(v.etag for v in versions)


class HistoryView:
    """The :class:`~storage.backend.Backend` protocol over a versioned backend's history; read-only."""

    def __init__(self, inner: Backend, history: Versioned, *, as_of: datetime | None = None) -> None:
        if as_of is not None and as_of.tzinfo is None:
            raise UsageError(N_("a point in time needs a UTC offset"))
        self.inner = inner
        self.as_of = as_of
        self._history = history
        self._lock = threading.RLock()
        self._versions: dict[str, Versions] | None = None
        self._chosen: dict[str, ObjectVersion | None] = {}
        self._manifest: Manifest | None = None
        self._manifest_raw: bytes | None = None
        self._trusted_key: str | None = None
        self._min_sequence = 0
        self.recoveries: dict[str, Recovery] = {}
        #: why the view reads only current versions, if it must
        self.notes: list[str] = []
        self._plain = False

    # -- what the view trusts -------------------------------------------------------------

    def trust(self, public_key: str | None, min_sequence: int = 0) -> None:
        """Accept only manifests signed by ``public_key`` with at least ``min_sequence``.

        Called once the key is known (the pinned key, or the one derived from the unlocked
        repository); the choices that depended on the manifest are made again.
        """
        with self._lock:
            self._trusted_key = public_key
            self._min_sequence = min_sequence
            self._manifest = self._manifest_raw = None
            self._chosen = {k: v for k, v in self._chosen.items() if content_name(k) is not None}

    @property
    def manifest(self) -> Manifest | None:
        """The signed manifest the view's choices follow (``None``: none verifies)."""
        self._choose(MANIFEST_KEY)
        return self._manifest

    # -- the Backend protocol ----------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.as_of is None:
            return self.inner.url
        return f"{self.inner.url} as of {self.as_of.isoformat()}"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(cheap_ranges=self.inner.capabilities.cheap_ranges)

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self._refuse(key)

    def save_new(self, key: str, data: bytes) -> bool:
        self._refuse(key)

    def remove(self, key: str) -> None:
        self._refuse(key)

    def _refuse(self, key: str) -> NoReturn:
        raise UsageError(
            N_("{url} is opened read-only (a view of its version history): {key} was not written"),
            url=self.url,
            key=key,
        )

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if self._plain_reads():
            return self.inner.load(key, offset, length)
        version = self._choose(key)
        if version is None:
            raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url)
        if key == MANIFEST_KEY and self._manifest_raw is not None and offset == 0 and length is None:
            return self._manifest_raw
        return self._history.load_version(key, version.version_id, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        if self._plain_reads():
            return self.inner.stat(key)
        version = self._choose(key)
        if version is None:
            raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url)
        return ObjectInfo(key, version.size, version.mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if self._plain_reads():
            return self.inner.list(prefix)
        needed: set[str] | None = None
        found = []
        for key, candidates in sorted(self._index().items()):
            if not key.startswith(prefix):
                continue
            if candidates[0].deleted:
                if needed is None:
                    needed = self._needed()
                if key not in needed:
                    continue
            version = self._choose(key)
            if version is not None:
                found.append(ObjectInfo(key, version.size, version.mtime))
        return iter(found)

    def close(self) -> None:
        self.inner.close()

    # -- choosing versions --------------------------------------------------------------------

    def _plain_reads(self) -> bool:
        self._index()
        return self._plain

    def _index(self) -> dict[str, Versions]:
        with self._lock:
            if self._versions is None:
                by_key: dict[str, Versions] = defaultdict(list)
                limit = self.as_of.timestamp() if self.as_of is not None else None
                try:
                    for version in self._history.list_versions(""):
                        if limit is None or version.mtime <= limit:
                            by_key[version.key].append(version)
                except AccessDenied as exc:
                    if self.as_of is not None:
                        raise
                    self._plain = True
                    self.notes.append(
                        Message(
                            N_("{reason}: reading only the current versions, without their history"),
                            reason=message_of(exc),
                        )
                    )
                for versions in by_key.values():
                    # newest first; within one millisecond the storage's "latest" wins
                    versions.sort(key=lambda v: (v.mtime, v.latest), reverse=True)
                self._versions = dict(by_key)
            return self._versions

    def _needed(self) -> set[str]:
        """What the state needs even under a delete marker: config, manifest, and all it signs."""
        manifest = self.manifest
        needed = {CONFIG_KEY, MANIFEST_KEY}
        if manifest is not None:
            needed |= set(manifest.referenced()) | set(manifest.keys)
        return needed

    def _choose(self, key: str) -> ObjectVersion | None:
        with self._lock:
            if key in self._chosen:
                return self._chosen[key]
        candidates = self._index().get(key, [])
        real = [v for v in candidates if not v.deleted]
        chosen = None
        if real:
            if key == MANIFEST_KEY:
                chosen = self._choose_manifest(candidates[0], real)
            elif key.startswith(CHAIN_PREFIX):
                chosen = self._choose_link(key, candidates[0], real)
            elif content_name(key) is not None:
                chosen = self._choose_content(key, candidates[0], real)
            else:
                chosen = self._choose_fixed(key, candidates[0], real)
        with self._lock:
            self._chosen.setdefault(key, chosen)
            if chosen is not None and chosen is not candidates[0]:
                kind = "deleted" if candidates[0].deleted else "overwritten"
                written = datetime.fromtimestamp(chosen.mtime, UTC).isoformat(timespec="milliseconds")
                self.recoveries[key] = Recovery(key, kind, chosen.version_id, written)
            return self._chosen[key]

    def _digest(self, key: str, version: ObjectVersion) -> str:
        return sha256_pieces(lambda o, n: self._history.load_version(key, version.version_id, o, n), version.size)[0]

    def _choose_content(self, key: str, head: ObjectVersion, real: Versions) -> ObjectVersion | None:
        if _same_bytes(real):
            return real[0]
        name = content_name(key)
        for version in real:
            if self._digest(key, version) == name:
                return version
        return None if head.deleted else head  # nothing intact: the reader reports the damage

    def _choose_fixed(self, key: str, head: ObjectVersion, real: Versions) -> ObjectVersion | None:
        if not head.deleted and _same_bytes(real):
            return head
        manifest = self.manifest
        signed = None
        if manifest is not None:
            signed = manifest.config_sha256 if key == CONFIG_KEY else manifest.keys.get(key)
        if signed is not None:
            for version in real:
                if self._digest(key, version) == signed:
                    return version
        if head.deleted:
            # a removed key slot stays removed unless the manifest signs it; a repository
            # always has a config
            return real[0] if key == CONFIG_KEY else None
        return head

    def _choose_link(self, key: str, head: ObjectVersion, real: Versions) -> ObjectVersion | None:
        """A format-2 link verifies itself: the newest version signed (with the trusted key) for its position.

        One position is claimed once at the primary, so no other genuine bytes exist for it.
        """
        if not head.deleted and _same_bytes(real):
            return head
        for version in real[:MANIFEST_TRIES]:
            if version.size > MAX_BYTES["manifest link"]:
                continue  # planted: a genuine link is never this large, and it is not read
            raw = self._history.load_version(key, version.version_id, 0, version.size)
            try:
                link = verify_link(raw, public_key=self._trusted_key, repo_id=None, where=key)
            except ManifestInvalid:
                continue
            if link_key(link.position) == key:
                return version
        return None if head.deleted else head  # nothing verifies: the reader reports it

    def _choose_manifest(self, head: ObjectVersion, real: Versions) -> ObjectVersion | None:
        for version in real[:MANIFEST_TRIES]:
            if version.size > MAX_BYTES["manifest"]:
                continue  # planted: a genuine manifest is never this large, and it is not read
            raw = self._history.load_version(MANIFEST_KEY, version.version_id, 0, version.size)
            try:
                # the chain's links through this view: each one's own intact version
                manifest = verify_manifest(raw, public_key=self._trusted_key, repo_id=None, load=link_reader(self))
            except ManifestInvalid:
                continue
            if manifest.sequence < self._min_sequence:
                continue  # an older state put back over the current one: a rollback
            with self._lock:
                self._manifest, self._manifest_raw = manifest, raw
            return version
        # nothing verifies: serve what is there, for the reader to report
        return None if head.deleted else head


def open_history(backend: Backend, *, as_of: datetime | None = None) -> HistoryView | None:
    """A :class:`HistoryView` over ``backend`` if its storage keeps versions, else ``None``.

    ``as_of`` on storage without versions is refused: there is no earlier state to show.
    """
    history = versioned(backend)
    if history is None:
        if as_of is not None:
            raise UsageError(
                N_(
                    "--as-of needs storage that keeps object versions (S3 with versioning or Object Lock); "
                    "{url} keeps none"
                ),
                url=backend.url,
            )
        return None
    return HistoryView(backend, history, as_of=as_of)
