"""What a restore will do, learnt before anything is written, and how its files are shared out.

One pass over the snapshot's tree refuses a snapshot whose *names* could leave the target:
absolute paths, ``.``/``..``/empty components, NUL, unsorted or repeated entries, entries
beneath a non-directory. Link *targets* are data and are not judged here. The pass collects
what the writers need from the whole tree (directories, links and special files, the big
files, the files hard links name) so no process parses the tree twice for them. A tree blob
that cannot be read is noted, not fatal: only the entries it lists are lost.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from backup.errors import CorruptObject, HostileSnapshot
from backup.forked import Claims
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, decode_entry, path_key
from dc.errors import N_, message_of


def check_entry_path(path: str) -> None:
    """Refuse a path that could leave the target."""
    if not path or path.startswith("/") or "\0" in path:
        raise HostileSnapshot(N_("snapshot holds an unsafe path {path!r}; nothing was restored"), path=path)
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise HostileSnapshot(N_("snapshot holds an unsafe path {path!r}; nothing was restored"), path=path)


@dataclass
class TreeShape:
    """What the validating pass learns: counts, and the directories and other entries to create."""

    files: int = 0
    bytes: int = 0
    dirs: list[Entry] = field(default_factory=list)
    #: links, hard links, FIFOs, sockets and devices, in tree order
    others: list[Entry] = field(default_factory=list)
    #: files of a restore unit's size or more, largest first: restored first (:func:`claimed_files`)
    big_files: list[Entry] = field(default_factory=list)
    #: the other files kept, in tree order, so the writers (forked after this pass) need not
    #: read and decode the tree again; None when there are more than :data:`KEPT_FILES`
    #: (memory stays bounded: the writers then read the tree themselves)
    small_files: list[Entry] | None = field(default_factory=list)
    #: files that hard links name: the writers say which of them they restored
    link_sources: set[str] = field(default_factory=set)
    #: tree blobs that could not be read: what they list is not restored
    bad_blobs: dict[str, str] = field(default_factory=dict)
    #: which entries the restore keeps (``--include`` / ``--exclude``); None: all of them
    select: Callable[[str], bool] | None = None
    #: hard links kept whose first name the selection leaves out, as files of their own: the
    #: first such name of a file carries its content, later ones become hard links to it
    link_copies: list[Entry] = field(default_factory=list)
    #: hard links kept whose first name the selection leaves out and is no file (a FIFO, a
    #: device) or lies in a damaged tree blob: skipped, not failed
    links_left_out: list[Entry] = field(default_factory=list)


def iter_entries(
    repo: Repository, snapshot: Snapshot, bad_blobs: Iterable[str] = (), select: Callable[[str], bool] | None = None
) -> Iterator[Entry]:
    """The snapshot's entries (those ``select`` keeps), skipping the tree blobs named in ``bad_blobs``."""
    skip = set(bad_blobs)
    for blob_id in snapshot.tree:
        if blob_id not in skip:
            for entry in _blob_entries(repo, blob_id):
                if select is None or select(entry["path"]):
                    yield entry


def _blob_entries(repo: Repository, blob_id: str) -> list[Entry]:
    data = repo.read_blob(bytes.fromhex(blob_id))
    if data and not data.endswith(b"\n"):
        raise CorruptObject(N_("tree blob {blob_id} is truncated"), blob_id=blob_id[:16])
    return [decode_entry(line, f"tree blob {blob_id[:16]}") for line in data.splitlines()]


def validate_tree(repo: Repository, snapshot: Snapshot, select: Callable[[str], bool] | None = None) -> TreeShape:
    """One pass over the tree before any write (it also collects directories and links, so the
    tree is not parsed once more for them). A damaged tree blob is noted, not fatal.

    Every name is judged, selected or not; only what ``select`` keeps is collected, with the
    directories above it (a file kept by ``--include`` needs its directories)."""
    previous: tuple[str, ...] | None = None
    shape = TreeShape(select=select)
    above_kept: set[str] = set()
    kinds: dict[str, str] = {}
    for blob_id in snapshot.tree:
        try:
            entries = _blob_entries(repo, blob_id)
        except CorruptObject as exc:
            shape.bad_blobs[blob_id] = message_of(exc)
            continue
        for entry in entries:
            path = entry["path"]
            check_entry_path(path)
            key = path_key(path)
            if previous is not None and key <= previous:
                raise HostileSnapshot(
                    N_("snapshot tree is out of order or repeats {path!r}; nothing was restored"), path=path
                )
            previous = key
            parent = posixpath.dirname(path)
            if parent and kinds.get(parent, "dir") != "dir":
                raise HostileSnapshot(
                    N_("snapshot places {path!r} under a non-directory; nothing was restored"), path=path
                )
            kind = entry["type"]
            if kind != "file" and len(kinds) < 1_000_000:
                kinds[path] = kind
            if select is not None:
                if not select(path):
                    if kind == "dir":
                        shape.dirs.append(entry)  # kept below if something beneath it is
                    continue
                _note_ancestors(above_kept, parent)
            if kind == "file":
                size = int(entry.get("size", 0))
                shape.files += 1
                shape.bytes += size
                if size >= UNIT_BYTES:
                    shape.big_files.append(entry)
                elif shape.small_files is not None:
                    shape.small_files.append(entry)
                    if len(shape.small_files) > KEPT_FILES:
                        shape.small_files = None
            elif kind == "dir":
                shape.dirs.append(entry)
            else:
                shape.others.append(entry)
                if kind == "hardlink":
                    shape.link_sources.add(entry["link"])
    if select is not None:
        shape.dirs = [d for d in shape.dirs if d["path"] in above_kept or select(d["path"])]
        left_out = [e for e in shape.others if e["type"] == "hardlink" and not select(e["link"])]
        if left_out:
            _copy_links_left_out(repo, snapshot, shape, left_out)
    shape.big_files.sort(key=lambda entry: -int(entry.get("size", 0)))  # stable: ties keep tree order
    return shape


def _copy_links_left_out(repo: Repository, snapshot: Snapshot, shape: TreeShape, left_out: list[Entry]) -> None:
    """A kept name of a hard link is restored although its first name is not selected: a
    selection names the paths to bring back, and every name of a linked file holds the same
    bytes (``dump`` gives them too). The first kept name takes the file's content, the other
    kept names link to it; the first name itself is never written (it is outside the selection)."""
    wanted = {e["link"] for e in left_out}
    firsts = {
        entry["path"]: entry
        for entry in iter_entries(repo, snapshot, shape.bad_blobs)
        if entry["type"] == "file" and entry["path"] in wanted
    }
    copied: dict[str, str] = {}
    rewritten: dict[str, Entry] = {}
    for entry in left_out:
        first = firsts.get(entry["link"])
        if first is None:
            shape.links_left_out.append(entry)
            continue
        if entry["link"] in copied:
            rewritten[entry["path"]] = {**entry, "link": copied[entry["link"]]}
            shape.link_sources.add(copied[entry["link"]])
        else:
            copied[entry["link"]] = entry["path"]
            shape.link_copies.append({**first, "path": entry["path"]})
            shape.files += 1
            shape.bytes += int(first.get("size", 0))
    gone = {e["path"] for e in shape.link_copies} | {e["path"] for e in shape.links_left_out}
    shape.others = [rewritten.get(e["path"], e) for e in shape.others if e["path"] not in gone]


def _note_ancestors(found: set[str], directory: str) -> None:
    while directory and directory not in found:
        found.add(directory)
        directory = posixpath.dirname(directory)


#: a unit of work claimed by one restore process: consecutive files of one directory, this big at most
UNIT_BYTES = 16 * 1024 * 1024
#: small files whose entries the validating pass keeps for the writers (~1 KiB each): each
#: further pass over the tree costs a writer ~6 CPU-µs per entry (docs/performance.md)
KEPT_FILES = 100_000


class ClaimCursor:
    """One process's walk over the units of work, numbered alike by every process: a unit is
    this process's when the claim it took is that unit's number (:class:`Claims`)."""

    def __init__(self, claims: Claims) -> None:
        self._claims = claims
        self._unit = -1
        self._claim = claims.take()

    def next_is_mine(self) -> bool:
        """Move on to the next unit; whether this process claimed it."""
        self._unit += 1
        if self._unit > self._claim:
            self._claim = self._claims.take()
        return self._unit == self._claim


def claimed_ranges(cursor: ClaimCursor, count: int) -> Iterator[int]:
    """Which of ``count`` leading units (ranges of large files, :mod:`backup.restoreparts`) this process claims."""
    for unit in range(count):
        if cursor.next_is_mine():
            yield unit


def claimed_files(
    repo: Repository, snapshot: Snapshot, claims: Claims | ClaimCursor, shape: TreeShape
) -> Iterator[Entry]:
    """The files of the units this process claims: ``shape.big_files`` (those of a unit's size
    or more) first, then the rest of the tree.

    Every process cuts the same files into the same units and claims the next unit whenever
    it is free; a claim is always ahead of where the process is, so one forward pass finds
    all of its files. A unit stays inside one directory: two processes creating files in the
    same directory serialise on its lock in the kernel, and spin while they wait. Largest
    first ends the processes' shares together.
    """
    cursor = claims if isinstance(claims, ClaimCursor) else ClaimCursor(claims)

    def units(entries: Iterable[Entry], big_ones: bool) -> Iterator[Entry]:
        unit_dir, unit_bytes, mine = None, 0, False
        for entry in entries:
            entry_size = int(entry.get("size", 0))
            if entry["type"] != "file" or (entry_size >= UNIT_BYTES) != big_ones:
                continue
            parent = posixpath.dirname(entry["path"])
            if parent != unit_dir or unit_bytes + entry_size > UNIT_BYTES:
                unit_dir, unit_bytes = parent, 0
                mine = cursor.next_is_mine()
            unit_bytes += entry_size
            if mine:
                yield entry

    yield from units(shape.big_files, True)
    if shape.small_files is not None:
        yield from units(shape.small_files, False)
    else:
        yield from units(iter_entries(repo, snapshot, shape.bad_blobs, shape.select), False)
