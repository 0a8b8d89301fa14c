"""``repair index``: rebuild the index from the packs themselves, as restic's ``repair index`` does.

Every pack carries an encrypted header listing its blobs, so the index is redundant: when an
index file is lost or damaged, the packs it named are still there, intact, and only unnamed.
This rebuilds index records for every stored pack that no sound index file names, whose
size differs from its record, or (``read_all``) every pack, and verifies every blob of each
pack it reads. It also puts back what was moved: a pack under the wrong type directory or
fan-out, or a sealed object (index, snapshot, tombstone) or key slot under the wrong prefix,
are recognised by their bytes (:mod:`backup.layout`) and copied home before the stray copy
goes.

Nothing readable is ever lost. A damaged pack is not deleted: the blobs of it that still
authenticate are copied into a fresh pack (through its header, or, when the header is gone,
through the offsets its old index record gave), and only the damaged pack's index record
goes; prune removes the pack itself later, like any pack in no index. An index file is
removed only when it cannot be read, after the index files replacing it are stored, and never
when its bytes are some other bcpctl object. Packs a pending prune mark condemns are not
indexed again, so an interrupted prune cannot have its deletions undone. The prune lease is
held throughout, so prune cannot run at the same time; backups can (they only add objects).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from backup import compress
from backup.checkreport import Problem
from backup.errors import CorruptObject
from backup.index import INDEX_PREFIX, IndexedPack, encode_index, split_index
from backup.kindnames import noun
from backup.layout import PACK_KINDS, Identity, identify, is_object_name, is_pack_key, place_of
from backup.locks import RepositoryLock
from backup.objectsize import OversizedObject
from backup.pack import BlobEntry, PackBuilder, decrypt_blob, pack_key, parse_pack
from backup.prune import LEASE_TTL_SECONDS, condemned_packs
from backup.repository import Repository
from dc.errors import N_, BcpError, Message, message_of
from storage.backend import ObjectInfo

#: (packs read so far, packs to read)
RepairProgress = Callable[[int, int], None]

#: packs per rebuilt index file: index files stay small enough to load and replicate quickly
_PACKS_PER_INDEX = 256


@dataclass
class IndexRepairReport:
    index_files: int = 0
    packs_stored: int = 0
    packs_read: int = 0
    #: packs newly indexed (no sound index named them) or re-indexed (size changed, read_all)
    packs_indexed: list[str] = field(default_factory=list)
    #: packs whose index record went: missing from storage, or damaged (their readable blobs salvaged)
    packs_dropped: list[Problem] = field(default_factory=list)
    #: damaged packs whose readable blobs were copied into new packs
    packs_salvaged: list[str] = field(default_factory=list)
    blobs_salvaged: int = 0
    #: blobs that could not be read from any copy: ``repair snapshots`` drops the files using them
    blobs_lost: list[str] = field(default_factory=list)
    #: ``(from, to)`` of objects put back where they belong
    moved: list[tuple[str, str]] = field(default_factory=list)
    #: stale locks released on the way
    notes: list[str] = field(default_factory=list)
    #: damaged index files and exact copies under wrong names, removed once replaced
    removed: list[Problem] = field(default_factory=list)
    #: objects that are not what their place says and that repair cannot identify: left alone
    left: list[Problem] = field(default_factory=list)
    #: packs in no index that a pending prune mark condemns (not indexed again)
    packs_condemned: int = 0
    index_files_written: list[str] = field(default_factory=list)


#: pack name -> (its index record, every readable index file naming it)
SoundIndex = dict[str, tuple[IndexedPack, list[str]]]


def repair_index(
    repo: Repository, *, read_all: bool = False, progress: RepairProgress | None = None
) -> IndexRepairReport:
    report = IndexRepairReport()
    # The prune lock: repair and prune both rewrite index files and must not interleave.
    with RepositoryLock(repo.backend, "prune", ttl=LEASE_TTL_SECONDS) as lock:
        report.notes += lock.notes
        # Index files come and go, so the manifest is signed afresh on close; that also replaces
        # a damaged or lost manifest, which check reports and nothing else can repair.
        repo.state_changed = True
        repo.journal.checkpoint()  # packs and index files change wholesale: a full state
        repo.sync_index()
        listing = _list(repo)
        sound, broken = _load_indexes(repo, listing, report)
        if _rehome_sealed(repo, listing, broken, report):
            listing = _list(repo)
            sound, broken = _load_indexes(repo, listing, report)
        left_alone = {problem.object for problem in report.left}
        broken = [name for name in broken if INDEX_PREFIX + name not in left_alone]
        _rehome_packs(repo, listing, sound, report)
        _Rebuild(repo, _list(repo), sound, read_all, report, progress).run(broken)
        repo.sync_index()
    return report


def _list(repo: Repository) -> dict[str, ObjectInfo]:
    return {info.key: info for info in repo.backend.list("")}


def _load_indexes(
    repo: Repository, listing: dict[str, ObjectInfo], report: IndexRepairReport
) -> tuple[SoundIndex, list[str]]:
    """The packs every readable index file names, and the index files that cannot be read."""
    sound: SoundIndex = {}
    broken = []
    names = sorted(k.removeprefix(INDEX_PREFIX) for k in listing if k.startswith(INDEX_PREFIX))
    report.index_files = len(names)
    for name in names:
        try:
            index = repo.load_index(name)
        except BcpError:
            broken.append(name)
            continue
        for pack in index.packs:
            sound.setdefault(pack.name, (pack, []))[1].append(name)
    return sound, broken


def _put_back(repo: Repository, key: str, data: bytes, found: Identity, report: IndexRepairReport) -> bool:
    """Copy an identified object home (unless an equal or intact one is there), then remove it here."""
    home = found.home
    if home is None or home == key:
        return False
    if found.copy_of:
        repo.backend.remove(key)
        report.removed.append(Problem(key, Message(N_("a copy of {home} under another name"), home=home)))
        return True
    if not found.named_by_content and found.kind not in ("key slot", "manifest"):
        return False  # damaged: its name no longer proves what it is
    if _exists(repo, home) and not _damaged_pack(repo, home):
        report.left.append(
            Problem(
                key,
                Message(
                    N_("a {kind} that belongs at {home}, where another object already is"),
                    kind=noun(found.kind),
                    home=home,
                ),
            )
        )
        return False
    repo.backend.save(home, data)
    repo.backend.remove(key)
    report.moved.append((key, home))
    return True


def _exists(repo: Repository, key: str) -> bool:
    try:
        repo.backend.stat(key)
    except BcpError:
        return False
    return True


def _damaged_pack(repo: Repository, key: str) -> bool:
    """A pack at its home whose bytes no longer hash to its name (an intact copy may replace it)."""
    if not is_pack_key(key):
        return False
    try:
        return hashlib.sha256(repo.load_pack(key)).hexdigest() != key.rsplit("/", 1)[-1]
    except OversizedObject:
        return True


def _rehome_sealed(
    repo: Repository, listing: dict[str, ObjectInfo], broken: list[str], report: IndexRepairReport
) -> bool:
    """Unreadable index files and snapshots that are another object: put them back. Return
    whether anything moved."""
    from backup.snapshot import list_snapshots

    errors: dict[str, str] = {}
    list_snapshots(repo, errors=errors, superseded=True)
    changed = False
    for key in [INDEX_PREFIX + name for name in broken] + [f"snapshots/{sid}" for sid in errors]:
        try:
            data = repo.load_any(key)
        except BcpError:
            continue
        found = identify(repo, key, data, listing)
        if found.kind == place_of(key).kind and not found.copy_of:
            continue
        if _put_back(repo, key, data, found, report):
            changed = True
        elif found.kind not in (None, "lock") and key.startswith(INDEX_PREFIX):  # a lease anywhere else is junk
            report.left.append(
                Problem(
                    key,
                    Message(
                        N_("not an index file but a {kind}: left in place, move it by hand"), kind=noun(found.kind)
                    ),
                )
            )
    return changed


def _rehome_packs(
    repo: Repository, listing: dict[str, ObjectInfo], sound: SoundIndex, report: IndexRepairReport
) -> None:
    """Indexed packs stored where their name or type does not put them: copy home, then remove.

    Packs no index names are read by the rebuild, which puts them home as it goes.
    """
    for key in sorted(k for k in listing if is_pack_key(k)):
        name = key.rsplit("/", 1)[-1]
        record = sound.get(name)
        if place_of(key).well_formed and (record is None or key == pack_key(name, record[0].blob_type)):
            continue
        try:
            data = repo.load_any(key)
        except OversizedObject as exc:
            report.left.append(Problem(key, Message(N_("{reason}; left for prune"), reason=message_of(exc))))
            continue
        found = identify(repo, key, data, listing)
        if found.kind not in PACK_KINDS:
            report.left.append(Problem(key, Message(N_("not a readable pack, in a pack directory: left for prune"))))
            continue
        _put_back(repo, key, data, found, report)


class _Rebuild:
    """Read the packs that need it, salvage damaged ones, write the index files replacing old ones."""

    def __init__(
        self,
        repo: Repository,
        listing: dict[str, ObjectInfo],
        sound: SoundIndex,
        read_all: bool,
        report: IndexRepairReport,
        progress: RepairProgress | None,
    ) -> None:
        self.repo = repo
        self.listing = listing
        self.sound = sound
        self.read_all = read_all
        self.report = report
        self.progress = progress
        #: new index records: packs read and found intact, and salvage packs
        self.records: list[IndexedPack] = []
        #: packs whose old record must not be carried over (dropped, or replaced by a new record)
        self.replaced: set[str] = set()
        #: index files to write again without what changed, then remove
        self.rewrite: set[str] = set()
        self.builders: dict[int, PackBuilder] = {}
        #: blob ids with a readable, indexed copy (a salvage copy of them would be a duplicate)
        self.have: set[bytes] = set()

    def run(self, broken: list[str]) -> None:
        repo, report = self.repo, self.report
        stored = {k.rsplit("/", 1)[-1]: k for k in self.listing if is_pack_key(k) and place_of(k).well_formed}
        report.packs_stored = len(stored)
        for name, (record, _index_names) in sorted(self.sound.items()):
            if pack_key(name, record.blob_type) not in self.listing:
                self._drop(name, pack_key(name, record.blob_type), Message(N_("missing from storage")))
        condemned = condemned_packs(repo)
        to_read = []
        for name, key in sorted(stored.items()):
            indexed = self.sound[name][0] if name in self.sound else None
            if indexed is None and name in condemned:
                report.packs_condemned += 1
            elif indexed is None or indexed.size != self.listing[key].size or self.read_all:
                to_read.append(key)
        reading = {key.rsplit("/", 1)[-1] for key in to_read}
        for name, (record, _index_names) in self.sound.items():
            if name not in reading and name not in self.replaced:
                self.have.update(e.id for e in record.entries)
        for done, key in enumerate(to_read, start=1):
            self._read(key)
            if self.progress:
                self.progress(done, len(to_read))
        for builder in self.builders.values():
            self._ship(builder)
        self._write(broken)

    def _drop(self, name: str, key: str, why: Message) -> None:
        self._replace(name)
        self.report.packs_dropped.append(Problem(key, why))

    def _replace(self, name: str) -> None:
        """The pack's old record is not carried over; the index files holding it are rewritten."""
        self.replaced.add(name)
        if name in self.sound:
            self.rewrite.update(self.sound[name][1])

    def _write(self, broken: list[str]) -> None:
        repo, report = self.repo, self.report
        kept = [
            record
            for name, (record, index_names) in self.sound.items()
            if name not in self.replaced and self.rewrite.intersection(index_names)
        ]
        new = self.records + kept
        gone = self.rewrite | set(broken)
        supersedes = tuple(sorted(name for name in gone if is_object_name(name)))
        if not new and not gone:
            return
        for index in split_index(new, supersedes, max_packs=_PACKS_PER_INDEX):
            report.index_files_written.append(repo.save_sealed(INDEX_PREFIX, "index", encode_index(index)))
        # Only now that the replacement is stored do the old index files go.
        for index_name in sorted(gone):
            repo.backend.remove(INDEX_PREFIX + index_name)
            why = Message(N_("unreadable")) if index_name in broken else Message(N_("replaced by the rebuilt index"))
            report.removed.append(Problem(INDEX_PREFIX + index_name, why))

    def _read(self, key: str) -> None:
        repo, report = self.repo, self.report
        name = key.rsplit("/", 1)[-1]
        try:
            data = repo.load_any(key)
        except OversizedObject as exc:
            if name in self.sound:
                self._drop(name, key, message_of(exc))
            else:
                report.left.append(Problem(key, Message(N_("{reason}; left for prune"), reason=message_of(exc))))
            return
        report.packs_read += 1
        old = self.sound[name][0] if name in self.sound else None
        intact = hashlib.sha256(data).hexdigest() == name
        if not intact and old is None and _put_back(repo, key, data, identify(repo, key, data, self.listing), report):
            return  # an exact copy of another pack under this name: nothing of it to index
        try:
            salt, entries = parse_pack(repo.master, repo.repo_id, data, key)
        except CorruptObject:
            salt, entries = (old.salt, list(old.entries)) if old else (b"", [])
        payloads = [(entry, _payload(repo, data, salt, entry, key)) for entry in entries]
        if intact and entries and all(payload is not None for _, payload in payloads):
            record = IndexedPack(name, entries[0].type, salt, len(data), tuple(entries))
            home = pack_key(name, record.blob_type)
            if home != key:  # no index named it, so only its header says where it belongs
                repo.backend.save(home, data)
                repo.backend.remove(key)
                report.moved.append((key, home))
            if old != record:
                self._replace(name)
                self.records.append(record)
                report.packs_indexed.append(home)
            self.have.update(e.id for e in entries)
            return
        if not entries:
            report.left.append(
                Problem(key, Message(N_("a pack whose header cannot be read and that no index names: left for prune")))
            )
            return
        # Damaged: every blob that still authenticates goes into a fresh pack; the record goes.
        good = [(entry, payload) for entry, payload in payloads if payload is not None]
        self._drop(
            name,
            key,
            Message(
                N_("damaged: {good} of {total} blob(s) still read and were salvaged"),
                good=len(good),
                total=len(entries),
            ),
        )
        report.packs_salvaged.append(key)
        for entry, payload in good:
            if entry.id not in self.have:
                self.have.add(entry.id)
                self._salvage(entry, payload)
        for entry, read in payloads:
            if read is None and entry.id not in self.have:
                report.blobs_lost.append(entry.id.hex())

    def _salvage(self, entry: BlobEntry, payload: bytes) -> None:
        builder = self.builders.get(entry.type)
        if builder is None:
            capacity = self.repo.config.pack_size + self.repo.config.chunker.max
            builder = self.builders[entry.type] = PackBuilder(self.repo.master, self.repo.repo_id, entry.type, capacity)
        builder.add(entry.id, payload, entry.flags, entry.raw_length)
        self.report.blobs_salvaged += 1
        if len(builder) >= self.repo.config.pack_size:
            self._ship(self.builders.pop(entry.type))

    def _ship(self, builder: PackBuilder) -> None:
        if not builder.entries:
            return
        pack = builder.finish()
        self.repo.backend.save(pack.key, pack.data)
        self.records.append(IndexedPack(pack.name, pack.blob_type, pack.salt, len(pack.data), pack.entries))
        self.report.packs_indexed.append(pack.key)


def _payload(repo: Repository, data: bytes, salt: bytes, entry: BlobEntry, key: str) -> bytes | None:
    """A blob's stored payload if it authenticates and matches its id, else None."""
    if not salt or entry.offset + entry.length > len(data):
        return None
    try:
        sealed = memoryview(data)[entry.offset : entry.offset + entry.length]
        payload = decrypt_blob(repo.cipher_for(salt), repo.repo_id, entry, sealed, key)
        plain = compress.decode(payload, entry.flags, entry.raw_length, key)
    except CorruptObject:
        return None
    return payload if repo.master.chunk_id_of(plain) == entry.id else None
