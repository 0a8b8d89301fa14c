"""The structural check: index files, packs against storage, snapshots and stray entries.

Nothing here reads a pack's bytes (that is :mod:`backup.checkdata`, with ``read_data``): what
the listing, the index files and the snapshots' trees say is judged against one
:class:`~backup.checkview.CheckView`, so a prune or backup committing meanwhile is the next
check's to judge rather than damage.
"""

from __future__ import annotations

from collections.abc import Mapping

from backup.checkagain import Rejudge, stored_as_indexed
from backup.checkreport import REPAIR_INDEX, CheckReport, Problem
from backup.checkview import CheckView
from backup.damage import Damage, SnapshotJudge
from backup.index import INDEX_PREFIX
from backup.kindnames import noun
from backup.layout import identify, is_pack_key, place_of
from backup.pack import pack_key
from backup.repository import Repository
from backup.snapshot import list_snapshots
from dc.errors import N_, BcpError, Message
from storage.backend import ObjectInfo
from storage.capabilities import StrayEntries, as_capability
from storage.errors import ObjectNotFound

#: unindexed packs listed one by one up to this many; the rest are counted
_LISTED = 20


def check_indexes(repo: Repository, view: CheckView, report: CheckReport) -> tuple[dict[str, list[str]], set[str]]:
    """Re-read every index file of the view (the cache trusts names it has seen, check must not).

    Return the packs sound index files name (each with the names of those index files), and
    the index files they supersede.
    """
    names = view.index_names
    broken = {name: message for name, message in repo.broken_indexes.items() if name in names}
    named_by: dict[str, list[str]] = {}
    superseded: set[str] = set()
    report.index_files = len(names)
    for name in sorted(names - set(broken)):
        try:
            index = repo.load_index(name)
        except ObjectNotFound:
            continue  # prune deleted it since the listing; the index that superseded it is in the view
        except BcpError as exc:
            broken[name] = exc.message
            continue
        for pack in index.packs:
            named_by.setdefault(pack.name, []).append(name)
        superseded.update(index.supersedes)
    for name, message in sorted(broken.items()):
        key = INDEX_PREFIX + name
        report.problems.append(Problem(key, what_is(repo, key, view.listing)[0] or message))
        report.suggest(REPAIR_INDEX)
    return named_by, superseded


def check_strays(repo: Repository, report: CheckReport) -> None:
    """FIFOs, devices and sockets where objects belong: nothing lists or reads them, check names them."""
    storage = as_capability(repo.backend, StrayEntries)
    for key, kind in storage.strays() if storage is not None else ():
        report.problems.append(
            Problem(key, Message(N_("not an object but {kind} (stray or planted); remove it"), kind=kind))
        )


def what_is(repo: Repository, key: str, listing: Mapping[str, ObjectInfo]) -> tuple[str | None, bool]:
    """For an object that is not what its place says: what it is instead, and whether it is an
    extra object (a copy, a stray, another kind of object) rather than a damaged one of its place."""
    try:
        found = identify(repo, key, repo.load_any(key), listing)
    except BcpError:
        return None, False
    if found.copy_of:
        return Message(
            N_("a copy of {copy_of} under another name (harmless; '{command}' removes it)"),
            copy_of=found.copy_of,
            command=REPAIR_INDEX,
        ), True
    if found.kind is None:
        return (
            (None, False) if place_of(key).well_formed else (Message(N_("not a bcpctl object (a stray file?)")), True)
        )
    if found.kind == place_of(key).kind:
        return None, False
    kind, place = _a(found.kind), _a(place_of(key).kind)
    if found.home:
        moved = Message(
            N_("is {kind}, not {place} (moved here?); it belongs at {home}"), kind=kind, place=place, home=found.home
        )
        return moved, True
    return Message(N_("is {kind}, not {place} (moved here?)"), kind=kind, place=place), True


def _a(kind: str | None) -> Message:
    if kind and kind[0] in "aeiou":
        return Message(N_("an {kind}"), kind=noun(kind))
    return Message(N_("a {kind}"), kind=noun(kind))


def retired(repo: Repository, index_names: list[str]) -> bool:
    """Whether every index file naming a pack is gone since the view was taken.

    Prune deletes the index files a superseding one replaces before it deletes their packs
    (:mod:`backup.prune`), so a pack that vanished with all of its index files was pruned
    while check ran. A pack missing while an index file naming it stays is damage.
    """
    for name in index_names:
        try:
            repo.backend.stat(INDEX_PREFIX + name)
        except ObjectNotFound:
            continue
        return False
    return bool(index_names)


def check_packs(
    repo: Repository,
    view: CheckView,
    named_by: Mapping[str, list[str]],
    damage: Damage,
    report: CheckReport,
) -> list[str]:
    """Indexed packs against storage; return the keys of stored packs that no index names.

    The cache may also hold packs of index files newer than the view (a backup, or prune's
    repacking, committing meanwhile). They are the next check's to judge; until then their
    blobs count as readable where the pack is stored with its indexed size, so a snapshot
    whose blobs prune moved while check ran is not called damaged.
    """
    listing = view.listing
    stored: dict[str, list[str]] = {}
    for key in listing:
        if is_pack_key(key):
            stored.setdefault(key.rsplit("/", 1)[-1], []).append(key)
    indexed = repo.cache.packs()
    report.packs = len(indexed)
    canonical = set()
    for name, blob_type, size in indexed:
        key = pack_key(name, blob_type)
        canonical.add(key)
        info = listing.get(key)
        if name not in named_by:
            if repo.cache.index_of(name) in view.index_names or not stored_as_indexed(repo, key, size):
                damage.packs.add(name)  # only a damaged index file locates its blobs, or it is gone
        elif info is None and retired(repo, named_by[name]):
            damage.packs.add(name)
        elif info is None:
            elsewhere = [k for k in stored.get(name, ()) if k != key]
            if elsewhere:
                message = Message(
                    N_("pack is missing here but stored at {key} (moved?); '{command}' moves it back"),
                    key=elsewhere[0],
                    command=REPAIR_INDEX,
                )
            else:
                message = Message(N_("pack is missing"))
            report.problems.append(Problem(key, message))
            damage.packs.add(name)
            report.suggest(REPAIR_INDEX)  # it puts the pack back, or drops its record
        elif info.size != size:
            report.problems.append(
                Problem(
                    key,
                    Message(
                        N_("pack has {size} bytes, the index says {expected} (truncated?)"),
                        size=info.size,
                        expected=size,
                    ),
                )
            )
            damage.packs.add(name)
            damage.resized.add(name)
            report.suggest(REPAIR_INDEX)  # it re-reads a pack whose size is not the indexed one
    indexed_names = {row[0] for row in indexed}
    unindexed = []
    for key in sorted(k for names in stored.values() for k in names if k not in canonical):
        name = key.rsplit("/", 1)[-1]
        if name in indexed_names:
            report.notes.append(
                Problem(key, Message(N_("a second copy of an indexed pack, stored under the wrong directory")))
            )
            continue
        unindexed.append(key)
        if not place_of(key).well_formed:
            report.notes.append(
                Problem(key, Message(N_("in no index, and its name or directory is not a pack's (a stray?)")))
            )
        elif len(unindexed) <= _LISTED:
            report.notes.append(Problem(key, Message(N_("in no index"))))
    report.unindexed_packs = len(unindexed)
    if len(unindexed) > _LISTED:
        report.notes.append(
            Problem("data/, meta/", Message(N_("{value} more pack(s) in no index"), value=len(unindexed) - _LISTED))
        )
    return unindexed


def check_snapshots(repo: Repository, view: CheckView, judge: SnapshotJudge, report: CheckReport) -> None:
    """The snapshots of the view; one committed meanwhile is the next check's."""
    errors: dict[str, str] = {}
    snapshots = list_snapshots(repo, errors=errors, ids=view.snapshot_ids, superseded=True)
    report.snapshots = len(snapshots) + len(errors)
    for snapshot_id, message in sorted(errors.items()):
        key = f"snapshots/{snapshot_id}"
        what, extra = what_is(repo, key, view.listing)
        report.problems.append(Problem(key, what or message))
        if not extra:
            report.affected_snapshots.append(snapshot_id)
    reported: set[str] = set()  # one line per damaged tree blob is enough to act on
    rejudge = Rejudge(repo, view.listing, judge)
    for snapshot in snapshots:
        verdicts = judge.trees(snapshot)
        again = verdicts if all(v.intact for v in verdicts) else rejudge.verdicts(snapshot)
        if again is None or all(v.intact for v in again):
            continue  # forgotten while check ran (prune may have taken its data), or judged on a cache mid-rebuild
        for verdict in again:
            if verdict.tree_id in reported or verdict.intact:
                continue
            reported.add(verdict.tree_id)
            if verdict.unreadable:
                where = Message(
                    N_("snapshot {short_id} tree blob {tree_id}"),
                    short_id=snapshot.short_id,
                    tree_id=verdict.tree_id[:16],
                )
                report.problems.append(Problem(where, verdict.unreadable))
            elif verdict.damaged_files:
                first = verdict.damaged_files[0]
                reason, more = first.reason, len(verdict.damaged_files) - 1
                if more:
                    reason = Message(
                        N_("{reason} (and {more} more file(s) of this tree blob)"), reason=reason, more=more
                    )
                where = Message(N_("snapshot {short_id} file {path!r}"), short_id=snapshot.short_id, path=first.path)
                report.problems.append(Problem(where, reason))
        report.affected_snapshots.append(snapshot.id)
