"""Looking inside snapshots without restoring them: ``ls``, ``find`` and ``dump``.

Every path a user gives goes through :mod:`backup.patterns` (the rules restore's
``--include`` / ``--exclude`` use). Trees are read one metadata blob at a time in their
stored order (sorted by path components), so listing a directory of a huge snapshot stops
as soon as the listing has passed it.

Names are file-system bytes: one that is not UTF-8 is shown with ``\\xNN`` escapes and
handed to programs as its exact bytes too (``path_b64``), as the tree stores it.
"""

from __future__ import annotations

import base64
import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from backup.errors import CorruptObject, VerificationFailed
from backup.filedigest import hasher, recorded
from backup.patterns import compile_pattern, snapshot_path
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree, path_key
from dc.errors import N_, UsageError
from dc.plaintext import one_line

_TYPE_BITS = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "hardlink": stat.S_IFREG,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
}


def shown(name: str) -> str:
    """A file-system name as one line of text: bytes that are not UTF-8 as ``\\xNN``, what a
    terminal would obey (a newline, an escape sequence, a bidi override) escaped, so a listing
    line is always one entry; spaces, a Japanese name's full-width one included, stay."""
    return one_line(os.fsencode(name).decode("utf-8", "backslashreplace"))


def as_text(name: str) -> str:
    r"""A name as JSON can carry it: exact when it is UTF-8 (newlines and all), else with
    ``\xNN`` escapes (and its exact bytes beside it, ``path_b64``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def b64_if_not_utf8(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return base64.b64encode(os.fsencode(name)).decode()
    return None


@dataclass(frozen=True)
class Listed:
    """One entry of a snapshot as ``ls`` and ``find`` show it (names by :func:`as_text`)."""

    path: str
    type: str
    #: ``-rw-r--r--`` style
    mode: str
    size: int | None
    mtime: str | None
    uid: int | None
    gid: int | None
    #: a symlink's target, a hard link's first name
    target: str | None = None
    #: the exact bytes of ``path`` (base64) when they are not UTF-8
    path_b64: str | None = None
    #: the exact bytes of ``target`` (base64) when they are not UTF-8
    target_b64: str | None = None


def listed(entry: Entry) -> Listed:
    kind = entry["type"]
    mtime = entry.get("mtime")
    when = datetime.fromtimestamp(mtime / 1e9, UTC).isoformat() if isinstance(mtime, int) else None
    target = entry.get("target") if kind == "symlink" else entry.get("link") if kind == "hardlink" else None
    return Listed(
        path=as_text(entry["path"]),
        type=kind,
        mode=stat.filemode(_TYPE_BITS[kind] | int(entry.get("mode", 0) or 0)),
        size=int(entry["size"]) if kind == "file" and "size" in entry else None,
        mtime=when,
        uid=entry.get("uid"),
        gid=entry.get("gid"),
        target=as_text(target) if isinstance(target, str) else None,
        path_b64=b64_if_not_utf8(entry["path"]),
        target_b64=b64_if_not_utf8(target) if isinstance(target, str) else None,
    )


def _entries(repo: Repository, snapshot: Snapshot) -> Iterator[Entry]:
    return iter_tree(repo.read_blob, snapshot.tree)


def list_entries(repo: Repository, snapshot: Snapshot, path: str = "", *, recursive: bool = False) -> Iterator[Listed]:
    """The entries directly in ``path`` (a directory of the snapshot, ``""`` its root), every
    entry beneath it with ``recursive``, or the entry itself when ``path`` is not a directory.

    Entries are yielded as the tree is read, never gathered: a listing of millions of files
    holds one metadata blob in memory. ``path`` is looked up before this returns, so a missing
    one is refused before the caller has shown anything.
    """
    where = snapshot_path(path)
    entries = _entries(repo, snapshot)
    if where:
        for entry in entries:
            if entry["path"] == where:
                if entry["type"] != "dir":
                    return iter([listed(entry)])
                break
            if path_key(entry["path"]) > path_key(where):
                raise UsageError(
                    N_("snapshot {short_id} holds no '{where}'"), short_id=snapshot.short_id, where=shown(where)
                )
        else:
            raise UsageError(
                N_("snapshot {short_id} holds no '{where}'"), short_id=snapshot.short_id, where=shown(where)
            )
    return _beneath(entries, where, recursive=recursive)


def _beneath(entries: Iterator[Entry], where: str, *, recursive: bool) -> Iterator[Listed]:
    prefix = f"{where}/" if where else ""
    for entry in entries:
        name = entry["path"]
        if not name.startswith(prefix):
            break  # sorted by components: everything beneath ``where`` follows it directly
        if recursive or posixpath.dirname(name) == where:
            yield listed(entry)


@dataclass(frozen=True)
class Found:
    """One match of ``find``: the snapshot it is in, and the entry."""

    snapshot: str
    time: str
    system: str | None
    entry: Listed


def find_entries(repo: Repository, snapshots: Sequence[Snapshot], pattern: str) -> Iterator[Found]:
    """Entries matching ``pattern`` themselves (not merely lying beneath a match) in each of
    ``snapshots``, in the order given, each snapshot's in tree order.

    Matches are yielded as the trees are read (a bad pattern is refused before this returns):
    ``find '*'`` over millions of files never holds more than one metadata blob.
    """
    compiled = compile_pattern(pattern)
    return _matches(repo, snapshots, compiled.names)


def _matches(repo: Repository, snapshots: Sequence[Snapshot], names: Callable[[str], bool]) -> Iterator[Found]:
    for snapshot in snapshots:
        for entry in _entries(repo, snapshot):
            if names(entry["path"]):
                yield Found(snapshot.id, snapshot.time.isoformat(), snapshot.system, listed(entry))


def file_entry(repo: Repository, snapshot: Snapshot, path: str | None) -> Entry:
    """The entry of the file ``path`` (a hard link followed to its first name); with no path,
    the snapshot's one file (a database dump, a command's output)."""
    if path is None:
        files = [e for e in _entries(repo, snapshot) if e["type"] == "file"]
        if len(files) != 1:
            raise UsageError(
                N_("snapshot {short_id} holds {n_files} files; name the one to dump"),
                short_id=snapshot.short_id,
                n_files=len(files),
            )
        return files[0]
    where = snapshot_path(path)
    if not where:
        raise UsageError(
            N_("the root of snapshot {short_id} is a directory; name a file to dump"), short_id=snapshot.short_id
        )
    by_path: dict[str, Entry] = {}
    wanted = where
    for entry in _entries(repo, snapshot):
        by_path[entry["path"]] = entry if entry["type"] in ("file", "hardlink") else {"type": entry["type"]}
        if entry["path"] == wanted:
            if entry["type"] == "hardlink":
                first = by_path.get(entry["link"])
                if first is None or first.get("type") != "file":
                    raise UsageError(
                        N_("'{where}' is a hard link to '{entry}', which is not a file"),
                        where=shown(where),
                        entry=shown(entry["link"]),
                    )
                return first
            if entry["type"] != "file":
                if entry["type"] == "dir":
                    raise UsageError(
                        N_(
                            "'{where}' in snapshot {short_id} is a dir, not a file; restore --include takes a directory"
                        ),
                        where=shown(where),
                        short_id=snapshot.short_id,
                    )
                raise UsageError(
                    N_("'{where}' in snapshot {short_id} is a {kind}, not a file"),
                    where=shown(where),
                    short_id=snapshot.short_id,
                    kind=entry["type"],
                )
            return entry
    raise UsageError(N_("snapshot {short_id} holds no '{where}'"), short_id=snapshot.short_id, where=shown(where))


def dump_file(repo: Repository, snapshot: Snapshot, entry: Entry) -> Iterator[bytes]:
    """The file's bytes, blob by blob; after the last one, its size and digest are compared
    with the backup's record (:class:`VerificationFailed` if they differ: what was already
    handed out must then be thrown away)."""
    try:
        size, (algorithm, expected) = int(entry["size"]), recorded(entry)
        chunk_ids = [bytes.fromhex(chunk) for chunk in entry.get("chunks", ())]
    except (KeyError, TypeError, ValueError):  # UnknownDigest is a ValueError
        raise CorruptObject(
            N_("snapshot {short_id}: the entry of '{entry}' is malformed"),
            short_id=snapshot.short_id,
            entry=shown(entry["path"]),
        ) from None
    digest = hasher(algorithm)
    written = 0
    for chunk_id in chunk_ids:
        data = repo.read_blob(chunk_id, check_id=False)
        digest.update(data)
        written += len(data)
        yield data
    if written != size or digest.hexdigest() != expected:
        raise VerificationFailed(
            N_("'{entry}' in snapshot {short_id} differs from the backup record; discard what was written"),
            entry=shown(entry["path"]),
            short_id=snapshot.short_id,
        )
