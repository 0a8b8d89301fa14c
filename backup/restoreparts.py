"""A large file restored by several workers at once: each writes its ranges with ``pwrite``.

A file whose entry records its chunks' lengths (snapshot version 2, :mod:`backup.filedigest`)
is cut into ranges of about a restore unit each; every chunk's offset is known before
anything is read. Before the workers fork, the leading process creates the file under a
temporary name beneath the target (:meth:`Target.create_temp_file`: ``O_EXCL | O_NOFOLLOW``
in a directory reached without following links) and sets its length; the workers inherit
the descriptor, claim ranges like any other unit of work and write into it. Each chunk is
authenticated as it is decrypted and must have its recorded length.

The worker that writes a file's last range (:class:`Ledger`, shared by the workers) checks the
whole file's BLAKE3 against the record at once, while the others go on writing: no file waits
for one core at the end. Once every worker is done, the leading process gives each file whose
ranges were all written and whose digest matched its name (:meth:`Target.put_file`); a file
with a damaged or missing chunk, or whose digest differs, is removed under its temporary name
and named as not restored, and nothing partial ever stands under its final name. (A file no
worker checked is hashed there, the BLAKE3 tree spread over every core.)

Files kept for ``--overwrite if-changed`` comparison, files of older snapshots (SHA-256 only,
no chunk lengths) and files beyond :data:`MAX_PARTS` (each holds a descriptor until the end)
take the one-worker path of :meth:`Target.write_file`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from backup import restoreplan
from backup.errors import CorruptObject
from backup.filedigest import chunk_sizes, digest_fd
from backup.restoredirs import Identity, NotPlaced, lstat_at
from backup.restoremeta import apply_metadata
from backup.restoretarget import DIFFERS, Placed, ReadFn, Target, split
from backup.tree import Entry
from dc.errors import message_of

#: large files restored in ranges in one restore; each keeps a descriptor open until the end
MAX_PARTS = 64

ProgressFn = Callable[[int], None]


@dataclass
class Part:
    """One large file being written in ranges under its temporary name."""

    entry: Entry
    name: str
    parent: str
    where: Identity
    #: a duplicate of the directory's descriptor: the target's cache may close its own
    dir_fd: int
    temp: str
    fd: int
    digest: str
    chunks: list[bytes]
    sizes: list[int]
    #: ``(first chunk, end chunk, byte offset)`` of each range
    ranges: list[tuple[int, int, int]] = field(default_factory=list)
    open: bool = True


def _cut(sizes: list[int], unit: int) -> list[tuple[int, int, int]]:
    ranges: list[tuple[int, int, int]] = []
    first, offset, start, acc = 0, 0, 0, 0
    for i, n in enumerate(sizes):
        acc += n
        if acc >= unit:
            ranges.append((first, i + 1, start))
            first, start, acc = i + 1, offset + n, 0
        offset += n
    if first < len(sizes):
        ranges.append((first, len(sizes), start))
    return ranges


def splittable(entry: Entry) -> bool:
    """A file of a unit's size or more that records its chunks' lengths and BLAKE3, in several chunks."""
    sizes = chunk_sizes(entry)
    return (
        sizes is not None
        and len(sizes) > 1
        and isinstance(entry.get("blake3"), str)
        and int(entry["size"]) >= restoreplan.UNIT_BYTES
    )


def prepare(dest: Target, big_files: list[Entry]) -> tuple[list[Part], list[Entry]]:
    """Create the temporary files of the large files to restore in ranges (before forking);
    returns them and the large files left to the one-worker path.

    A file whose directory cannot be reached, or whose name is taken when the policy would
    keep or refuse what is there, is left to the one-worker path, which names why.
    """
    parts: list[Part] = []
    rest: list[Entry] = []
    for entry in big_files:
        if len(parts) >= MAX_PARTS or not splittable(entry):
            rest.append(entry)
            continue
        parent, name = split(entry["path"])
        try:
            chunks = [bytes.fromhex(c) for c in entry["chunks"]]
            dir_fd = dest.dir_fd(parent)
            where = dest.identity(parent)
            if lstat_at(dir_fd, name) is not None and dest.overwrite != "always":
                rest.append(entry)
                continue
            own_fd = os.dup(dir_fd)
        except (NotPlaced, OSError, ValueError, TypeError):
            rest.append(entry)
            continue
        try:
            temp, fd = dest.create_temp_file(own_fd, readable=True)
        except OSError:
            os.close(own_fd)
            rest.append(entry)
            continue
        sizes = chunk_sizes(entry) or []
        part = Part(entry, name, parent, where, own_fd, temp, fd, str(entry["blake3"]), chunks, sizes)
        parts.append(part)
        try:
            os.ftruncate(fd, int(entry["size"]))
        except OSError:
            discard(part)
            parts.pop()
            rest.append(entry)
            continue
        part.ranges = _cut(sizes, restoreplan.UNIT_BYTES)
    return parts, rest


def tasks(parts: list[Part]) -> list[tuple[int, int]]:
    """Every range as ``(part, range)``, largest files first (their order in ``parts``)."""
    return [(p, r) for p, part in enumerate(parts) for r in range(len(part.ranges))]


class Ledger:
    """How many ranges of each part are written, and whether one failed: shared by forked
    workers (create it before forking), so the one that writes a part's last range knows."""

    def __init__(self, parts: list[Part]) -> None:
        self._totals = [len(part.ranges) for part in parts]
        context = multiprocessing.get_context("fork")
        self._done = context.Array("q", max(1, len(parts)), lock=True)
        self._failed = context.Array("b", max(1, len(parts)), lock=False)

    def range_done(self, part: int, ok: bool) -> bool:
        """Note one range of ``part`` written (or failed); True when it was the last and none failed."""
        with self._done.get_lock():
            if not ok:
                self._failed[part] = 1
            self._done[part] += 1
            return bool(self._done[part] == self._totals[part] and not self._failed[part])


def check(part: Part) -> str | None:
    """Why the part's whole file is not the recorded one, or None (one core: the others write on)."""
    if digest_fd(part.fd, "blake3") != (part.digest, int(part.entry["size"])):
        return "the restored bytes differ from the backup record"
    return None


def failures(
    parts: list[Part], written: list[tuple[int, str | None]], checked: list[tuple[int, str | None]]
) -> tuple[dict[int, str], set[int]]:
    """Why each part failed (by its number), and which parts a worker checked whole, from every
    worker's ``(range task, why or None)`` and ``(part, why or None)``."""
    ranges = tasks(parts)
    why_not: dict[int, str] = {}
    done: set[int] = set()
    for task, why in written:
        done.add(task)
        if why is not None:
            why_not.setdefault(ranges[task][0], why)
    for task, (part, _index) in enumerate(ranges):
        if task not in done:
            why_not.setdefault(part, "not every range of the file was written")
    for part, why in checked:
        if why is not None:
            why_not.setdefault(part, why)
    return why_not, {part for part, why in checked if why is None}


def write_range(part: Part, index: int, read: ReadFn, progress: ProgressFn | None) -> int:
    """Write one range into the part's file; returns the bytes written. Raises :class:`NotPlaced`
    when a chunk cannot be read or has another length than recorded."""
    first, end, offset = part.ranges[index]
    written = 0
    for i in range(first, end):
        try:
            data = read(part.chunks[i])
        except CorruptObject as exc:
            raise NotPlaced(message_of(exc)) from None
        if len(data) != part.sizes[i]:
            raise NotPlaced(DIFFERS)
        view = memoryview(data)
        at = offset
        while view:
            n = os.pwrite(part.fd, view, at)
            view, at = view[n:], at + n
        offset += len(data)
        written += len(data)
        if progress:
            progress(len(data))
    return written


def finish(dest: Target, part: Part, failure: str | None, *, checked: bool, as_root: bool) -> Placed:
    """Give the part's file its name once checked whole (here, on every core, unless a worker
    did); raises :class:`NotPlaced` (the temporary file removed) for a failed range, a missing
    one, or a digest that differs."""
    try:
        if failure is not None:
            raise NotPlaced(failure)
        size = int(part.entry["size"])
        if not checked and digest_fd(part.fd, "blake3", parallel=True) != (part.digest, size):
            raise NotPlaced(DIFFERS)
        note = apply_metadata(part.fd, part.entry, as_root=as_root)
    except BaseException:
        discard(part)
        raise
    _close(part)
    try:
        dest.put_file(part.dir_fd, part.temp, part.name)
    finally:
        os.close(part.dir_fd)
    return Placed(part.parent, part.where, size, True, note)


def _close(part: Part) -> None:
    if part.open:
        part.open = False
        os.close(part.fd)


def discard(part: Part) -> None:
    """Remove the part's temporary file (a restore that ends early leaves nothing behind)."""
    if part.open:
        _close(part)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part.temp, dir_fd=part.dir_fd)
        os.close(part.dir_fd)
