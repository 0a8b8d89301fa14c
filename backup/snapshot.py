"""Snapshots: the commit record of one backup, written after its packs and index.

A snapshot names its system, tenant, source and parent, the tree blobs that list every
file, and what restore must verify: a digest per file or stream (in the tree) and, for
databases, per-table row counts taken in the same transaction snapshot as the dump.

Versions (:mod:`backup.filedigest`): 1, every file entry carries ``sha256``; 2, a path
source's file entries carry ``blake3`` and their chunks' ``sizes`` instead (streams keep
``sha256``). Both are read, so older snapshots stay restorable and verifiable; a version this
code does not know is refused rather than half understood.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from backup.errors import CorruptObject, SnapshotNotFound
from backup.objectsize import OversizedObject
from backup.repository import SNAPSHOT_PREFIX, Repository
from dc.errors import N_
from storage.errors import ObjectNotFound

#: the version new snapshots are written in
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Snapshot:
    time: datetime
    hostname: str
    username: str
    source_kind: str
    source_spec: str
    tree: tuple[str, ...]
    system: str | None = None
    tenant: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    #: ``{"tables": {"schema.table": rows}}`` for databases; streams carry SHA-256 in the tree.
    verify: dict[str, Any] = field(default_factory=dict)
    #: the snapshot this one re-labels (``bcpctl tag``): same tree, time and source, other
    #: tags. The older object is kept, untouched and verifiable, but no longer listed.
    supersedes: str | None = None
    #: filled in when loaded: the SHA-256 name of the stored object.
    id: str = ""
    #: the format of its tree's file entries (module docstring)
    version: int = FORMAT_VERSION

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def group(self) -> str:
        """What retention and ``latest`` group by: the system, else the source."""
        return self.system or f"{self.source_kind}:{self.source_spec}"

    def to_json(self) -> bytes:
        doc = {
            "version": self.version,
            "time": self.time.isoformat(),
            "hostname": self.hostname,
            "username": self.username,
            "source": {"kind": self.source_kind, "spec": self.source_spec},
            "system": self.system,
            "tenant": self.tenant,
            "tags": self.tags,
            "parent": self.parent,
            "tree": list(self.tree),
            "summary": self.summary,
            "verify": self.verify,
        }
        if self.supersedes is not None:
            doc["supersedes"] = self.supersedes
        return orjson.dumps(doc)

    @classmethod
    def from_json(cls, raw: bytes, snapshot_id: str) -> Snapshot:
        try:
            doc = orjson.loads(raw)
            version = doc.get("version")
            if version not in _READABLE_VERSIONS or isinstance(version, bool):
                raise ValueError(f"unsupported snapshot version {doc.get('version')}")
            time = datetime.fromisoformat(doc["time"])
            if time.tzinfo is None:
                raise ValueError("snapshot time without a time zone")
            tree = tuple(str(t) for t in doc["tree"])
            for blob_id in tree:
                if not re.fullmatch(r"[0-9a-f]{64}", blob_id):
                    raise ValueError("malformed tree blob id")
            supersedes = doc.get("supersedes")
            if supersedes is not None and not re.fullmatch(r"[0-9a-f]{64}", str(supersedes)):
                raise ValueError("malformed id of the snapshot it supersedes")
            return cls(
                time=time,
                hostname=str(doc["hostname"]),
                username=str(doc["username"]),
                source_kind=str(doc["source"]["kind"]),
                source_spec=str(doc["source"]["spec"]),
                tree=tree,
                system=doc.get("system"),
                tenant=doc.get("tenant"),
                tags={str(k): str(v) for k, v in (doc.get("tags") or {}).items()},
                parent=doc.get("parent"),
                summary=dict(doc.get("summary") or {}),
                verify=dict(doc.get("verify") or {}),
                supersedes=supersedes,
                id=snapshot_id,
                version=int(version),
            )
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise CorruptObject(
                N_("snapshot {snapshot_id} is malformed ({exc})"), snapshot_id=snapshot_id[:8], exc=exc
            ) from None


def save_snapshot(repo: Repository, snapshot: Snapshot) -> Snapshot:
    """Write the commit record; return the snapshot with its id."""
    since = repo.journal.floor()  # read before the write: a forget of it can only be signed after
    name = repo.save_sealed(SNAPSHOT_PREFIX, "snapshot", snapshot.to_json())
    repo.journal.snapshot(name, snapshot.time.isoformat(), snapshot.system, since=since)
    repo.state_changed = True
    return replace(snapshot, id=name)


def load_snapshot(repo: Repository, snapshot_id: str, *, size: int | None = None) -> Snapshot:
    """``size``: what a listing just said the object holds (saves a ``stat``)."""
    return Snapshot.from_json(repo.load_sealed(SNAPSHOT_PREFIX, "snapshot", snapshot_id, size=size), snapshot_id)


def snapshot_ids(repo: Repository) -> list[str]:
    return sorted(info.key.removeprefix(SNAPSHOT_PREFIX) for info in repo.backend.list(SNAPSHOT_PREFIX))


def list_snapshots(
    repo: Repository,
    *,
    system: str | None = None,
    errors: dict[str, str] | None = None,
    ids: Iterable[str] | None = None,
    superseded: bool = False,
) -> list[Snapshot]:
    """All readable snapshots (or those of ``ids``, a listing taken earlier), oldest first.

    A snapshot another one re-labels (:func:`relabels`) is left out unless ``superseded``:
    check, prune and repair judge every object; everything else sees the current labels.

    Unreadable ones go to ``errors`` if given, else raise. An object far larger than any
    snapshot is never one that was written (a stray or a planted file): without ``errors`` it
    is skipped and left in ``repo.skipped_objects`` for the command to name, so one such
    object does not hide every genuine snapshot.
    """
    found = []
    listing = sorted((info.key.removeprefix(SNAPSHOT_PREFIX), info.size) for info in repo.backend.list(SNAPSHOT_PREFIX))
    if ids is not None:
        # listed again, not taken from the caller's listing: one forgotten (and pruned) since
        # is no longer judged
        wanted = set(ids)
        listing = [(snapshot_id, size) for snapshot_id, size in listing if snapshot_id in wanted]
    for snapshot_id, size in listing:
        try:
            snapshot = load_snapshot(repo, snapshot_id, size=size)
        except ObjectNotFound:
            continue  # forgotten while we listed
        except CorruptObject as exc:
            if errors is None and isinstance(exc, OversizedObject):
                repo.skipped_objects[SNAPSHOT_PREFIX + snapshot_id] = exc.message
                continue
            if errors is None:
                raise
            errors[snapshot_id] = exc.message
            continue
        if system is None or snapshot.system == system:
            found.append(snapshot)
    found.sort(key=lambda s: (s.time, s.id))
    return found if superseded else current(found)


def current(snapshots: list[Snapshot]) -> list[Snapshot]:
    """``snapshots`` without those another of them re-labels."""
    by_id = {s.id: s for s in snapshots}
    hidden = {s.supersedes for s in snapshots if s.supersedes in by_id and relabels(s, by_id[s.supersedes])}
    return [s for s in snapshots if s.id not in hidden]


def relabelled(snapshot: Snapshot, snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """The older snapshots ``snapshot`` re-labels, directly or through others, newest first."""
    by_id = {s.id: s for s in snapshots}
    chain: list[Snapshot] = []
    while snapshot.supersedes in by_id and relabels(snapshot, by_id[snapshot.supersedes]):
        snapshot = by_id[snapshot.supersedes]
        if snapshot in chain:
            break
        chain.append(snapshot)
    return chain


def relabels(newer: Snapshot, older: Snapshot) -> bool:
    """True when ``newer`` differs from ``older`` in its tags alone: only then does it hide
    ``older`` from listings, so a snapshot claiming to supersede another can never make
    different content take its place."""
    return newer.supersedes == older.id and replace(newer, tags={}, supersedes=None, id="") == replace(
        older, tags={}, supersedes=None, id=""
    )


def find_by_id(repo: Repository, ref: str) -> Snapshot:
    """Resolve a full snapshot id or a unique id prefix (``latest`` is :func:`backup.snapref.find_snapshot`'s)."""
    if not re.fullmatch(r"[0-9a-f]{4,64}", ref):
        raise SnapshotNotFound(
            N_("'{ref}' is not a snapshot id, id prefix (4+ hex digits) or latest[:SYSTEM]"), ref=ref
        )
    matches = [sid for sid in snapshot_ids(repo) if sid.startswith(ref)]
    if not matches:
        raise SnapshotNotFound(N_("no snapshot {ref} in {url}"), ref=ref, url=repo.backend.url)
    if len(matches) > 1:
        raise SnapshotNotFound(
            N_("snapshot prefix {ref} is ambiguous ({n_matches} matches); give more digits"),
            ref=ref,
            n_matches=len(matches),
        )
    return load_snapshot(repo, matches[0])
