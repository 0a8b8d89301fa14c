"""The files of a restore: who writes which, and what each writer reports back.

Local repositories fork one writer process per core (:mod:`backup.forked`); each claims
units of work — ranges of the large files first (:mod:`backup.restoreparts`), then groups of
files (:func:`~backup.restoreplan.claimed_files`) — and writes them through its own view of
the target. Remote storage cannot fork (sockets, helper threads): writer threads instead,
one file each. Every writer returns a share: what it restored, what failed and why.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from backup import restoreparts
from backup.blobreader import BlobReader
from backup.forked import Claims, can_fork, run_forked
from backup.repository import Repository
from backup.restoreplan import ClaimCursor, TreeShape, claimed_files, claimed_ranges, iter_entries
from backup.restoretarget import NotPlaced, Pending, Placed, ReadFn, Target
from backup.snapshot import Snapshot
from backup.tree import Entry
from dc.errors import os_reason

ProgressFn = Callable[[int], None]

#: failures and notes named in full per share; beyond this only counted
LISTED = 1000


class _Share:
    """What one writer (process or thread) did; crosses the process boundary as a dict."""

    def __init__(self, link_sources: set[str]) -> None:
        self.link_sources = link_sources
        self.files = self.bytes = self.unchanged = self.failed_count = self.notes_count = 0
        self.failed: list[tuple[str, str]] = []
        self.notes: list[tuple[str, str]] = []
        self.linkable: list[str] = []
        #: ``(range task, why it failed or None)`` of the large files' ranges this share wrote
        self.ranges: list[tuple[int, str | None]] = []
        #: ``(part, why it differs or None)`` of the large files this share checked whole
        self.checked: list[tuple[int, str | None]] = []
        self.pending = Pending()

    def write(self, dest: Target, read: ReadFn, entry: Entry, progress: ProgressFn | None) -> None:
        path = entry["path"]
        try:
            placed = dest.write_file(entry, read, progress)
        except (NotPlaced, OSError) as exc:
            self.fail(path, why(exc))
            return
        self.placed(dest, path, placed)

    def placed(self, dest: Target, path: str, placed: Placed) -> None:
        """Count ``placed`` once its directory is found again beneath the target."""
        self.pending.add(dest, path, placed, lambda: self._count(path, placed), self.fail)

    def finish(self, dest: Target) -> None:
        """Settle what is still pending (the share's last directory)."""
        self.pending.settle(dest, self.fail)

    def _count(self, path: str, placed: Placed) -> None:
        self.files += 1
        self.bytes += placed.written
        self.unchanged += not placed.fresh
        if placed.note:
            self.notes_count += 1
            if len(self.notes) < LISTED:
                self.notes.append((path, placed.note))
        if path in self.link_sources:
            self.linkable.append(path)

    def fail(self, path: str, why: str) -> None:
        self.failed_count += 1
        if len(self.failed) < LISTED:
            self.failed.append((path, why))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("link_sources", "pending")}


def restore_link_copies(
    repo: Repository, dest: Target, shape: TreeShape, progress: ProgressFn | None
) -> dict[str, Any]:
    """The kept names of hard links whose first name the selection leaves out
    (:func:`backup.restoreplan.validate_tree`), written here after the other files."""
    share = _Share(shape.link_sources)
    if shape.link_copies:
        read, view = BlobReader(repo).read, dest.view()
        try:
            for entry in shape.link_copies:
                share.write(view, read, entry, progress)
            share.finish(view)
        finally:
            view.close()
    return share.as_dict()


def why(exc: BaseException) -> str:
    """Why an entry failed, as one line: a :class:`~dc.errors.Message` or the OS's
    :class:`~dc.errors.Reason`, so it is shown in the operator's language after crossing a writer's pipe."""
    if isinstance(exc, NotPlaced) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    if isinstance(exc, OSError):
        return os_reason(exc) if exc.strerror else type(exc).__name__
    return str(exc)


def _restore_share(
    repo: Repository,
    snapshot: Snapshot,
    dest: Target,
    claims: Claims,
    shape: TreeShape,
    parts: list[restoreparts.Part],
    ledger: restoreparts.Ledger,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Restore what this process claims (one process's share): ranges of the large files in
    ``parts`` (each file checked whole by whoever writes its last range), then files, each
    verified as written."""
    share = _Share(shape.link_sources)
    reader = BlobReader(repo)
    read = reader.read
    tally = _Tally(progress) if progress else None
    cursor = ClaimCursor(claims)
    ranges = restoreparts.tasks(parts)
    for task in claimed_ranges(cursor, len(ranges)):
        part, index = ranges[task]
        failure = None
        try:
            first, end, _offset = parts[part].ranges[index]
            reader.prefetch(parts[part].chunks[first:end])
            restoreparts.write_range(parts[part], index, read, tally)
        except (NotPlaced, OSError) as exc:
            failure = why(exc)
        share.ranges.append((task, failure))
        if ledger.range_done(part, failure is None):
            try:
                share.checked.append((part, restoreparts.check(parts[part])))
            except OSError as exc:
                share.checked.append((part, why(exc)))
    for batch in _batches(claimed_files(repo, snapshot, cursor, shape)):
        reader.prefetch(chunk for entry in batch for chunk in _chunk_ids(entry))
        for entry in batch:
            share.write(dest, read, entry, tally)
    share.finish(dest)
    if tally is not None:
        tally.flush()
    dest.close()
    return share.as_dict()


#: files, and bytes, whose blobs a writer looks up in one batch (:meth:`BlobReader.prefetch`);
#: a batch is claimed before it is written, so it stays small beside a unit of work
#: (:data:`~backup.restoreplan.UNIT_BYTES`) or the writers would not end together
_BATCH_FILES = 64
_BATCH_BYTES = 2 * 1024 * 1024


def _batches(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += entry.get("size", 0) if isinstance(entry.get("size"), int) else 0
        if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _chunk_ids(entry: Entry) -> list[bytes]:
    """The entry's chunk ids, or none when they are malformed (its writer names why)."""
    try:
        return [bytes.fromhex(chunk) for chunk in entry.get("chunks", ())]
    except (TypeError, ValueError):
        return []


class _Tally:
    """Progress passed on in steps of :data:`_TALLY_BYTES`: a forked writer's report takes a
    lock shared by every process, too costly to take per blob."""

    def __init__(self, report: ProgressFn) -> None:
        self._report = report
        self._pending = 0

    def __call__(self, amount: int) -> None:
        self._pending += amount
        if self._pending >= _TALLY_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._report(self._pending)
            self._pending = 0


_TALLY_BYTES = 8 * 1024 * 1024


def _restore_threaded(
    repo: Repository, snapshot: Snapshot, dest: Target, shape: TreeShape, workers: int, progress: ProgressFn | None
) -> list[dict[str, Any]]:
    """Remote storage cannot fork (sockets, helper threads): writer threads, one target view each."""
    shares: list[tuple[_Share, Target]] = []
    mine = threading.local()

    def read(chunk_id: bytes) -> bytes:
        return repo.read_blob(chunk_id, check_id=False)

    def write(entry: Entry) -> None:
        if not hasattr(mine, "share"):
            mine.share, mine.dest = _Share(shape.link_sources), dest.view()
            shares.append((mine.share, mine.dest))  # list.append is atomic
        mine.share.write(mine.dest, read, entry, progress)

    futures: deque[Future[None]] = deque()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="bcp-restore") as pool:
            for entry in iter_entries(repo, snapshot, shape.bad_blobs, shape.select):
                if entry["type"] == "file":
                    futures.append(pool.submit(write, entry))
                    while futures and (futures[0].done() or len(futures) > 256):
                        futures.popleft().result()
            while futures:
                futures.popleft().result()
        for share, view in shares:
            share.finish(view)
    finally:
        for _, view in shares:
            view.close()
    return [share.as_dict() for share, _ in shares]


def restore_files(
    repo: Repository,
    snapshot: Snapshot,
    dest: Target,
    shape: TreeShape,
    workers: int | None,
    progress: ProgressFn | None,
) -> list[dict[str, Any]]:
    count = workers or os.cpu_count() or 2
    if not can_fork(repo):
        return _restore_threaded(repo, snapshot, dest, shape, count, progress)
    # Created before the fork: the workers inherit the descriptors they write ranges into.
    parts, rest = restoreparts.prepare(dest, shape.big_files)
    try:
        shares = _restore_forked(repo, snapshot, dest, replace(shape, big_files=rest), parts, count, progress)
        return [*shares, _finish_parts(dest, shape, parts, shares)]
    finally:
        for part in parts:
            restoreparts.discard(part)


def _finish_parts(
    dest: Target, shape: TreeShape, parts: list[restoreparts.Part], shares: list[dict[str, Any]]
) -> dict[str, Any]:
    """Check each large file written in ranges and give it its name, or name why not."""
    failures, checked = restoreparts.failures(
        parts,
        [task for share in shares for task in share["ranges"]],
        [part for share in shares for part in share["checked"]],
    )
    leader = _Share(shape.link_sources)
    for number, part in enumerate(parts):
        path = part.entry["path"]
        try:
            placed = restoreparts.finish(
                dest, part, failures.get(number), checked=number in checked, as_root=dest.as_root
            )
        except (NotPlaced, OSError) as exc:
            leader.fail(path, why(exc))
            continue
        leader.placed(dest, path, placed)
    leader.finish(dest)
    return leader.as_dict()


def _restore_forked(
    repo: Repository,
    snapshot: Snapshot,
    dest: Target,
    shape: TreeShape,
    parts: list[restoreparts.Part],
    count: int,
    progress: ProgressFn | None,
) -> list[dict[str, Any]]:
    claims = Claims()
    ledger = restoreparts.Ledger(parts)
    reported = 0

    def report(amount: int) -> None:
        # Workers cannot reach this process's bar: every process adds to the shared total,
        # and this one shows it whenever it writes.
        nonlocal reported
        total = claims.add_done(amount)
        if progress and total > reported:
            progress(total - reported)
            reported = total

    def add_to_total(amount: int) -> None:
        claims.add_done(amount)  # shown by the leader at its next report

    def share(r: Repository, i: int, n: int) -> dict[str, Any]:
        mine = report if i == 0 else add_to_total
        return _restore_share(r, snapshot, dest, claims, shape, parts, ledger, mine if progress else None)

    return run_forked(repo, count, share)
