"""What changed between two snapshots: entries added, removed and changed, and for
databases the per-table row counts each recorded.

Both trees are stored sorted by path components, so they are compared side by side (a
merge join) one metadata blob at a time, whatever their size. A file's content is compared
by its recorded SHA-256, never by reading its data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from backup.browse import as_text, b64_if_not_utf8, shown
from backup.filedigest import UnknownDigest, recorded
from backup.patterns import snapshot_path
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree, path_key
from dc.errors import N_, UsageError

#: what is compared, in the order a change names it
_FIELDS = (
    ("type", ("type",)),
    ("content", ()),  # compared by :func:`_same_content`
    ("size", ("size",)),
    ("mode", ("mode",)),
    ("owner", ("uid", "gid")),
    ("target", ("target", "link", "major", "minor")),
)


@dataclass(frozen=True)
class Change:
    path: str
    #: ``added``, ``removed`` or ``changed``
    change: str
    #: the entry's type (its type in the newer snapshot when it changed)
    type: str
    #: for ``changed``: what differs, from ``type``, ``content``, ``size``, ``mode``, ``owner``, ``target``
    what: list[str] = field(default_factory=list)
    size_before: int | None = None
    size_after: int | None = None
    #: the exact bytes of ``path`` (base64) when they are not UTF-8 (``path`` then has ``\\xNN``)
    path_b64: str | None = None


@dataclass(frozen=True)
class TableChange:
    """A table whose recorded row count differs (``None``: the table was not there)."""

    table: str
    rows_before: int | None
    rows_after: int | None
    delta: int


@dataclass
class SnapshotDiff:
    before: str
    after: str
    path: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    changes: list[Change] = field(default_factory=list)
    #: database snapshots: tables whose row count changed, appeared or disappeared
    tables: list[TableChange] = field(default_factory=list)


def _beneath(repo: Repository, snapshot: Snapshot, where: str) -> Iterator[Entry]:
    prefix = f"{where}/"
    for entry in iter_tree(repo.read_blob, snapshot.tree):
        if not where or entry["path"] == where or entry["path"].startswith(prefix):
            yield entry


def _change(
    entry: Entry, change: str, what: list[str] | None = None, before: int | None = None, after: int | None = None
) -> Change:
    path = entry["path"]
    return Change(as_text(path), change, entry["type"], what or [], before, after, b64_if_not_utf8(path))


def _size(entry: Entry) -> int | None:
    return int(entry["size"]) if entry["type"] == "file" and "size" in entry else None


def _differences(old: Entry, new: Entry) -> list[str]:
    return [
        name
        for name, keys in _FIELDS
        if (not _same_content(old, new) if name == "content" else any(old.get(k) != new.get(k) for k in keys))
    ]


def _same_content(old: Entry, new: Entry) -> bool:
    """By the recorded digest where both snapshots used the same one; across snapshot format
    versions (SHA-256 before, BLAKE3 after: :mod:`backup.filedigest`) by the chunks, whose ids
    are keyed hashes of the content."""
    if old.get("type") != "file" or new.get("type") != "file":
        return True
    try:
        before, after = recorded(old), recorded(new)
    except UnknownDigest:
        return old.get("chunks") == new.get("chunks")
    return before == after if before[0] == after[0] else old.get("chunks") == new.get("chunks")


def diff_snapshots(repo: Repository, before: Snapshot, after: Snapshot, path: str = "") -> SnapshotDiff:
    """How ``after`` differs from ``before`` at ``path`` (a snapshot path, ``""`` for all)."""
    where = snapshot_path(path)
    result = SnapshotDiff(before.id, after.id, where)
    old_entries, new_entries = _beneath(repo, before, where), _beneath(repo, after, where)
    old, new = next(old_entries, None), next(new_entries, None)
    if where and old is None and new is None:  # a mistyped PATH must not read as "nothing changed"
        raise UsageError(
            N_("neither snapshot {before} nor {after} holds '{where}'"),
            before=before.short_id,
            after=after.short_id,
            where=shown(where),
        )
    while old is not None or new is not None:
        if new is None or (old is not None and path_key(old["path"]) < path_key(new["path"])):
            assert old is not None
            result.removed += 1
            result.changes.append(_change(old, "removed", before=_size(old)))
            old = next(old_entries, None)
        elif old is None or path_key(new["path"]) < path_key(old["path"]):
            result.added += 1
            result.changes.append(_change(new, "added", after=_size(new)))
            new = next(new_entries, None)
        else:
            if what := _differences(old, new):
                result.changed += 1
                result.changes.append(_change(new, "changed", what, _size(old), _size(new)))
            old, new = next(old_entries, None), next(new_entries, None)
    result.tables = table_changes(before.verify.get("tables") or {}, after.verify.get("tables") or {})
    return result


def table_changes(before: dict[str, int], after: dict[str, int]) -> list[TableChange]:
    """Tables whose recorded row count differs, in name order."""
    return [
        TableChange(name, before.get(name), after.get(name), (after.get(name) or 0) - (before.get(name) or 0))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
