"""Restoring a snapshot into a directory, verified against what backup recorded.

Before anything is written, :mod:`backup.restoreplan` refuses a snapshot whose *names*
could leave the target (absolute, ``..``, NUL, unsorted, beneath a non-directory). Link
*targets* are data: a symlink comes back
with its exact target bytes wherever it points, and nothing is ever followed or written
through (:mod:`backup.restoretarget` places every entry beneath the target's directory
descriptor, under a temporary name renamed into place).

Order: directories (so the writers find them), files (forked writer processes, threads for
remote storage), then links, FIFOs, device nodes and hard links, then directories' owners,
modes and times, deepest first. Each file's digest is taken as it is written and compared
with the backup's record before the file gets its name; a large file of a version-2
snapshot is written in ranges by every worker at once and checked whole afterwards, on
every core (:mod:`backup.restoreparts`).

Damage stays local: a file whose blob is damaged or missing fails alone, and so does what
a damaged tree blob lists. Everything else is restored and verified; the failures are
named with the snapshot (:class:`VerificationFailed`, exit 1), and none leaves a partial
file behind, under its name or a temporary one.

An entry counts as restored only once the directory it went through was found again at its
path beneath the target (:class:`~backup.restoretarget.Pending`, once per directory a writer moves on from): a
directory renamed out of the target during the restore takes its files with it, and they are
named as not restored instead. Entries whose owner or setuid/setgid bits could not be kept
are restored and named as warnings (:mod:`backup.restoremeta`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backup.errors import TargetNotEmpty, VerificationFailed
from backup.repository import Repository
from backup.restorefiles import restore_files, restore_link_copies, why
from backup.restoreplan import TreeShape, validate_tree
from backup.restoretarget import NotPlaced, Overwrite, Pending, Placed, Target, open_root
from backup.snapshot import Snapshot
from backup.tree import Entry
from dc.errors import N_, Message, UsageError, joined, os_reason

ProgressFn = Callable[[int], None]

#: failures and skipped entries named in full; beyond this only counted
_LISTED = 1000
#: failures named in the error message
_SHOWN = 5


@dataclass
class RestoreResult:
    snapshot_id: str
    target: str
    #: files restored and verified, written or (``--overwrite if-changed``) already there
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    #: FIFOs and device nodes
    specials: int = 0
    bytes: int = 0
    verified_files: int = 0
    #: files and links left as they were because they already matched (``if-changed``)
    unchanged: int = 0
    #: entries deliberately not recreated (sockets; device nodes without root), ``path: why``
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    #: entries that could not be restored, ``path: why``
    failed: list[str] = field(default_factory=list)
    failed_count: int = 0
    #: entries restored without their recorded owner, or without their setuid/setgid bits, ``path: why``
    warnings: list[str] = field(default_factory=list)
    warnings_count: int = 0
    seconds: float = 0.0

    def fail(self, path: str, reason: str) -> None:
        self.failed_count += 1
        if len(self.failed) < _LISTED:
            self.failed.append(_named(path, reason))

    def warn(self, path: str, reason: str) -> None:
        self.warnings_count += 1
        if len(self.warnings) < _LISTED:
            self.warnings.append(_named(path, reason))

    def skip(self, path: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < _LISTED:
            self.skipped.append(_named(path, reason))


def _named(path: str, reason: str) -> Message:
    """``'path': why``; ``reason`` a :class:`~dc.errors.Message` or ``Reason`` (shown in the operator's language)."""
    return Message(N_("{path}: {reason}"), path=repr(path), reason=reason)


def restore_snapshot(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    overwrite: Overwrite = "never",
    workers: int | None = None,
    progress: ProgressFn | None = None,
    select: Callable[[str], bool] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RestoreResult:
    """Restore ``snapshot`` into ``target`` under the overwrite policy (see :mod:`backup.restoretarget`).

    ``select`` (a :class:`backup.patterns.Selection`) keeps part of the snapshot: only what it
    keeps, and the directories above that, is restored. ``on_total`` hears the bytes of the
    files to restore before the first one is written (a selection's size is known only then:
    a progress bar's total and ETA).

    Raises :class:`VerificationFailed` naming what could not be restored, after restoring
    everything else; :class:`TargetNotEmpty` (nothing written) for a non-empty target under
    ``never``; :class:`HostileSnapshot` (nothing written) for unsafe names.
    """
    started = time.monotonic()
    refuse_source_path(snapshot, target, overwrite)
    shape = validate_tree(repo, snapshot, select)
    kept = shape.files or shape.dirs or shape.others or shape.link_copies or shape.links_left_out
    if select is not None and not (kept or shape.bad_blobs):
        # a mistyped --include would restore nothing and still end "verified", exit 0
        raise UsageError(
            N_(
                "--include and --exclude keep nothing of snapshot {short_id}; nothing was written "
                "('bcpctl find PATTERN' lists what a pattern matches)"
            ),
            short_id=snapshot.short_id,
        )
    if on_total is not None:
        on_total(shape.bytes)
    root_fd = open_root(target, overwrite)
    dest = Target(root_fd, overwrite, as_root=os.geteuid() == 0)
    result = RestoreResult(snapshot.id, os.path.realpath(target))
    for blob_id, problem in shape.bad_blobs.items():
        result.failed_count += 1
        if len(result.failed) < _LISTED:
            result.failed.append(
                Message(N_("'<entries of tree blob {blob}>': {reason}"), blob=blob_id[:16], reason=problem)
            )
    for entry in shape.links_left_out:
        result.skip(
            entry["path"],
            Message(N_("a hard link to {link}, which the patterns leave out and is no file"), link=repr(entry["link"])),
        )
    try:
        for entry in shape.dirs:
            try:
                dest.dir_fd(entry["path"])
                result.dirs += 1
            except (NotPlaced, OSError) as exc:
                result.fail(entry["path"], why(exc))
        linkable: set[str] = set()
        for share in [
            *restore_files(repo, snapshot, dest, shape, workers, progress),
            restore_link_copies(repo, dest, shape, progress),
        ]:
            result.files += share["files"]
            result.bytes += share["bytes"]
            result.unchanged += share["unchanged"]
            result.failed_count += share["failed_count"] - len(share["failed"])
            for path, reason in share["failed"]:
                result.fail(path, reason)
            result.warnings_count += share["notes_count"] - len(share["notes"])
            for path, reason in share["notes"]:
                result.warn(path, reason)
            linkable.update(share["linkable"])
        _place_others(dest, shape, result, linkable)
        # Directory times last, deepest first, or writing their contents would reset them.
        for entry in reversed(shape.dirs):
            try:
                if note := dest.finish_dir(entry):
                    result.warn(entry["path"], note)
            except (NotPlaced, OSError) as exc:
                result.fail(entry["path"], why(exc))
    finally:
        dest.close()
        os.close(root_fd)
    result.verified_files = result.files
    result.seconds = round(time.monotonic() - started, 3)
    if result.failed_count:
        raise RestoreIncomplete(_failure_message(snapshot, result), result)
    return result


def refuse_source_path(snapshot: Snapshot, target: Path, overwrite: Overwrite) -> None:
    """A restore onto the directory the snapshot was taken from replaces live data (restic's
    most regretted restore): under ``never`` it is refused even while that directory is empty
    or gone, so the operator says so with ``--overwrite``."""
    if overwrite != "never" or snapshot.source_kind != "path":
        return
    if os.path.realpath(target) == os.path.realpath(snapshot.source_spec):
        raise TargetNotEmpty(
            N_(
                "restore target {target} is the path snapshot {short_id} was taken from; nothing was "
                "written (--overwrite if-changed or --overwrite always restores onto it)"
            ),
            target=target,
            short_id=snapshot.short_id,
        )


class RestoreIncomplete(VerificationFailed):
    """Some entries were not restored (exit 1); ``result`` says what was, and names the rest."""

    def __init__(self, message: str, result: RestoreResult, /, **params: object) -> None:
        super().__init__(message, **params)
        self.result = result


def _place_others(dest: Target, shape: TreeShape, result: RestoreResult, linkable: set[str]) -> None:
    """Links, hard links, FIFOs and devices, once every file they may name is in place
    (``linkable``: the files hard links name that were restored). A hard link may name any
    of these too; one whose first name is deliberately not recreated (a socket, a device
    without root) is skipped with it."""
    pending = Pending()
    not_made: dict[str, str] = {}

    def count(path: str, kind: str, placed: Placed) -> Callable[[], None]:
        def counted() -> None:
            if kind == "symlink":
                result.symlinks += 1
            elif kind == "hardlink":
                result.hardlinks += 1
            else:
                result.specials += 1
            result.unchanged += not placed.fresh
            if placed.note:
                result.warn(path, placed.note)

        return counted

    for entry in shape.others:
        path, kind = entry["path"], entry["type"]
        try:
            if kind == "hardlink" and entry["link"] in not_made:
                result.skip(
                    path,
                    Message(N_("a hard link to {link}: {why}"), link=repr(entry["link"]), why=not_made[entry["link"]]),
                )
                continue
            if kind == "hardlink" and entry["link"] not in linkable:
                raise NotPlaced(Message(N_("hard link to {link}, which was not restored"), link=repr(entry["link"])))
            if kind == "socket":
                # a socket is made by the program that listens on it; restic does not recreate them either
                not_made[path] = Message(N_("a socket, not recreated"))
                result.skip(path, not_made[path])
                continue
            if kind in ("chardev", "blockdev") and not dest.as_root:
                not_made[path] = Message(N_("a device node, made only when restoring as root"))
                result.skip(path, not_made[path])
                continue
            placed = _place_other(dest, entry)
            if path in shape.link_sources:
                linkable.add(path)
            pending.add(dest, path, placed, count(path, kind, placed), result.fail)
        except PermissionError as exc:
            if kind in ("chardev", "blockdev"):  # root without CAP_MKNOD (a container)
                not_made[path] = Message(N_("a device node, not made: {strerror}"), strerror=os_reason(exc))
                result.skip(path, not_made[path])
            else:
                result.fail(path, why(exc))
        except (NotPlaced, OSError) as exc:
            result.fail(path, why(exc))
        except (KeyError, TypeError, ValueError):
            result.fail(path, Message(N_("the snapshot's entry is malformed")))
    pending.settle(dest, result.fail)


def _place_other(dest: Target, entry: Entry) -> Placed:
    kind = entry["type"]
    if kind == "symlink":
        return dest.place_symlink(entry)
    if kind == "hardlink":
        return dest.place_hardlink(entry)
    if kind == "fifo":
        return dest.place_node(entry, None)
    return dest.place_node(entry, os.makedev(int(entry["major"]), int(entry["minor"])))


def _failure_message(snapshot: Snapshot, result: RestoreResult) -> Message:
    shown = joined(result.failed[:_SHOWN])
    more = Message(N_("; and {count} more"), count=result.failed_count - _SHOWN) if result.failed_count > _SHOWN else ""
    if result.failed_count == 1:
        template = N_(
            "snapshot {short_id}: 1 entry not restored: {shown}{more}; everything else is restored and verified"
        )
    else:
        template = N_(
            "snapshot {short_id}: {count} entries not restored: {shown}{more}; everything else is restored and verified"
        )
    return Message(template, short_id=snapshot.short_id, count=result.failed_count, shown=shown, more=more)
