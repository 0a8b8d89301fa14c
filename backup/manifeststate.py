"""What a signed manifest states (shared by format 1, :mod:`backup.manifest`, and the chain of
format 2, :mod:`backup.manifestchain`): the repository's committed state as plain values."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup.errors import CorruptObject
from dc.errors import N_

MANIFEST_KEY = "manifest"
#: where format 2 stores its signed links (:mod:`backup.manifestchain`)
CHAIN_PREFIX = "manifests/"
FORMAT = "bcpctl-manifest"
VERSION = 1
#: how long a removed snapshot stays in the manifest's removal list
REMOVED_KEPT = timedelta(days=90)


class ManifestInvalid(CorruptObject):
    """A manifest that does not parse, does not verify or belongs to another repository (exit 1)."""


#: what reading a stored manifest or link raises on bytes that are not one, before any signature is
#: checked: besides the usual, JSON's ``Infinity`` given to ``int()`` (OverflowError) and nesting
#: deeper than the parser recurses (RecursionError) — both plantable without a key
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)


#: the newest manifest format this bcpctl reads (2: :mod:`backup.manifestchain`)
NEWEST_FORMAT = 2


def refuse_newer(doc: object, where: str) -> None:
    """A manifest body of a format newer than this bcpctl reads: one line saying so, not "malformed".

    An operator whose offsite lags the primary's upgrade must learn that the fix is upgrading
    bcpctl there, not repairing a manifest that is intact. Its signature cannot be checked here
    (the format's signed bytes are unknown), so it is refused all the same, and may be forged.
    """
    version = doc.get("version") if isinstance(doc, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > NEWEST_FORMAT:
        raise ManifestInvalid(
            N_(
                "{where} was written by a newer bcpctl (format {version}), or forged: this one reads formats 1 to "
                "{newest} and cannot check its signature"
            ),
            where=where,
            version=version,
            newest=NEWEST_FORMAT,
        )


def link_key(position: int) -> str:
    return f"{CHAIN_PREFIX}{position:012d}"


@dataclass(frozen=True)
class SnapshotEntry:
    id: str
    time: str
    system: str | None


@dataclass(frozen=True)
class RemovedSnapshot:
    """A snapshot the primary removed (forget/prune), signed so the offsite may keep it a while."""

    id: str
    #: when the primary signed a state without it (ISO 8601 with offset)
    removed: str
    system: str | None


@dataclass(frozen=True)
class Manifest:
    repository: str
    sequence: int
    time: str
    public_key: str
    config_sha256: str
    keys: dict[str, str]
    snapshots: tuple[SnapshotEntry, ...]
    indexes: tuple[str, ...]
    index_set_sha256: str
    packs: dict[str, int]
    #: snapshots removed at the primary within :data:`REMOVED_KEPT`, oldest first
    removed: tuple[RemovedSnapshot, ...] = ()
    #: SHA-256 of the stored manifest object (set when parsed; tells equal sequences apart)
    digest: str = field(default="", compare=False)
    #: format 2 (:mod:`backup.manifestchain`): the head's place in the chain (0: a format-1 manifest)
    position: int = field(default=0, compare=False)
    #: format 2: the position of the checkpoint the head's state is replayed from
    checkpoint_position: int = field(default=0, compare=False)
    #: format 2: the oldest link the verification of this state read (its chain from there on)
    first_position: int = field(default=0, compare=False)

    @property
    def snapshot_ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.snapshots)

    def referenced(self) -> dict[str, int | None]:
        """Every object key this state needs, with its size where the manifest knows it."""
        needed: dict[str, int | None] = {f"snapshots/{e.id}": None for e in self.snapshots}
        needed.update({f"index/{name}": None for name in self.indexes})
        needed.update(self.packs)
        if self.first_position:
            # the links a keyless verification of this state reads: kept under Object Lock and
            # never deleted offsite while this is the accepted state, as the objects it signs
            needed.update({link_key(p): None for p in range(self.first_position, self.position + 1)})
        return needed

    def newest_by_system(self) -> dict[str, datetime]:
        newest: dict[str, datetime] = {}
        for entry in self.snapshots:
            when = datetime.fromisoformat(entry.time)
            system = entry.system or "(none)"
            if system not in newest or when > newest[system]:
                newest[system] = when
        return newest

    def body(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "repository": self.repository,
            "sequence": self.sequence,
            "time": self.time,
            "public_key": self.public_key,
            "config_sha256": self.config_sha256,
            "keys": dict(sorted(self.keys.items())),
            "snapshots": [{"id": e.id, "time": e.time, "system": e.system} for e in self.snapshots],
            "indexes": list(self.indexes),
            "index_set_sha256": self.index_set_sha256,
            "packs": dict(sorted(self.packs.items())),
        }
        if self.removed:  # absent when empty: manifests without removals stay byte-for-byte as before
            doc["removed"] = [{"id": r.id, "removed": r.removed, "system": r.system} for r in self.removed]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def index_set_digest(names: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


class Journal:
    """What one process committed and has not signed yet: the delta of its next format-2 link.

    A signer of format 2 (:mod:`backup.manifestchain`) never lists ``snapshots/``: the process
    that commits a snapshot or writes an index file notes it here, and its next signature signs
    exactly that. Anything the journal cannot express (prune rewriting packs, a repair) asks for
    a checkpoint instead. Thread-safe: ``serve`` merges the journals of its jobs.

    A snapshot noted here may have been forgotten by another process before it is signed: the
    signer must not sign it back in (:func:`backup.chainsign.extend_chain` looks for its removal
    in the links after ``since[id]``). ``seen`` is a chain position already stored before
    anything noted from now on is written: the head the unlock read (0: a format-1 manifest), or
    this process's last signature, or in ``serve`` the link it signed last. ``None`` (unknown:
    no manifest signed with this key could be read at the unlock) makes the signer look back to
    the checkpoint in effect, as do snapshots merged from a worker process (workers commit none).
    ``seen_digest`` names the manifest stored there: a storage rolled back since (restored in
    place, or old objects replayed) may hold another link at that position, or none, and then
    the position bounds nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.added: dict[str, SnapshotEntry] = {}
        #: snapshot id → :meth:`floor` before its object was written (``None``: unknown)
        self.since: dict[str, tuple[int, str] | None] = {}
        self.indexes: dict[str, dict[str, int]] = {}
        self.needs_checkpoint = False
        self.seen: int | None = None
        #: the SHA-256 of the manifest stored at ``seen`` ("": unknown)
        self.seen_digest = ""

    def floor(self) -> tuple[int, str] | None:
        """``seen`` and its digest: the walk for forget's removals stops there only if the chain
        still holds that link (a storage rolled back since holds another, or none)."""
        return None if self.seen is None or not self.seen_digest else (self.seen, self.seen_digest)

    def snapshot(
        self, snapshot_id: str, time: str, system: str | None, *, since: tuple[int, str] | None = None
    ) -> None:
        """``since``: :meth:`floor` read *before* the snapshot's object was written."""
        with self._lock:
            self.added[snapshot_id] = SnapshotEntry(snapshot_id, time, system)
            self.since[snapshot_id] = since

    def index(self, name: str, packs: dict[str, int]) -> None:
        with self._lock:
            self.indexes[name] = dict(packs)

    def checkpoint(self) -> None:
        with self._lock:
            self.needs_checkpoint = True

    def absorb(self, other: Journal) -> None:
        if other is self:
            return
        with other._lock:
            added, indexes, full = dict(other.added), dict(other.indexes), other.needs_checkpoint
            since = {snapshot_id: other.since.get(snapshot_id) for snapshot_id in added}
        with self._lock:
            self.added.update(added)
            self.since.update(since)
            self.indexes.update(indexes)
            self.needs_checkpoint |= full

    def export(self) -> tuple[dict[str, SnapshotEntry], dict[str, dict[str, int]], bool]:
        """What this journal noted, as plain values another process can receive; this one is left empty."""
        taken = self.take()
        return taken.added, taken.indexes, taken.needs_checkpoint

    def merge(self, exported: tuple[dict[str, SnapshotEntry], dict[str, dict[str, int]], bool]) -> None:
        """Add what another process's journal noted (:meth:`export`): a forked worker's index files."""
        added, indexes, full = exported
        with self._lock:
            self.added.update(added)
            self.since.update(dict.fromkeys(added))  # what another process had seen is not known here
            self.indexes.update(indexes)
            self.needs_checkpoint |= full

    def take(self) -> Journal:
        """A journal holding everything noted so far; this one is left empty."""
        taken = Journal()
        with self._lock:
            taken.added, self.added = self.added, {}
            taken.since, self.since = self.since, {}
            taken.indexes, self.indexes = self.indexes, {}
            taken.needs_checkpoint, self.needs_checkpoint = self.needs_checkpoint, False
        return taken

    def clear(self) -> None:
        self.take()
