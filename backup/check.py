"""Verifying a repository: its layout and structure always, and with ``read_data`` every byte.

Structure: every index file authenticates; every indexed pack is stored where its type and
name say, with the size the index records; every snapshot authenticates and every blob its
tree names is indexed in a sound pack; the signed manifest verifies and nothing it signs is
missing (:mod:`backup.inventory`). With ``read_data`` each pack (or a rolling ``subset``) is
downloaded, its SHA-256 compared with its name, and every blob the index places in it
decrypted and checked against its keyed id, so a damaged blob marks only the files that use
it; packs no index names are read too and said to be what they are.

A pack that no index names is not garbage by definition: an interrupted backup leaves one,
but so does a lost or damaged index file, and then it holds the only copy of a snapshot's
data. Check calls such packs "in no index", points at ``bcpctl repair index`` whenever a
snapshot misses a blob, and mentions prune only when nothing is missing. Each problem names
the object; the report lists the snapshots a problem makes unrestorable and the commands
that repair it. Check never writes to the repository.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from backup import compress
from backup.checkagain import Rejudge, stored_as_indexed
from backup.checkreport import PRUNE, REPAIR_INDEX, REPAIR_INDEX_ALL, REPAIR_SNAPSHOTS, CheckReport, Problem
from backup.checkview import CheckView, take_view
from backup.damage import Damage, SnapshotJudge
from backup.errors import CorruptObject
from backup.index import INDEX_PREFIX
from backup.inventory import check_inventory, wait_for_prune
from backup.kindnames import noun
from backup.layout import PACK_KINDS, identify, is_pack_key, place_of
from backup.objectsize import OversizedObject
from backup.pack import BlobEntry, decrypt_blob, pack_key, parse_pack
from backup.repository import Repository
from backup.snapshot import list_snapshots
from backup.walcheck import check_wal
from dc.errors import N_, BcpError, Message, UsageError, message_of
from storage.backend import ObjectInfo
from storage.capabilities import StrayEntries, as_capability
from storage.errors import ObjectNotFound

ProgressFn = Callable[[int], None]

#: unindexed packs listed one by one up to this many; the rest are counted
_LISTED = 20
#: runs of one check at most while prunes keep changing the repository under it
_MAX_RUNS = 4


def parse_subset(text: str) -> tuple[int, int]:
    """``N/M``: the N-th of M slices (1-based), so M runs read every pack exactly once."""
    try:
        n, m = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(N_("invalid subset '{text}': use N/M, e.g. 1/7"), text=text) from None
    if not 1 <= n <= m:
        raise UsageError(N_("invalid subset '{text}': need 1 <= N <= M"), text=text)
    return n, m


def in_subset(pack_name: str, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    try:
        return int(pack_name[:8], 16) % m == n - 1
    except ValueError:  # a stray name: the first slice reads it
        return n == 1


def check_repository(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
) -> CheckReport:
    """Check the repository as one view (:mod:`backup.checkview`) shows it.

    Prune and ``repair index`` delete index files, and every process that syncs the shared
    index cache then rebuilds it. A snapshot judged damaged is judged again on a cache no
    rebuild touched (:mod:`backup.checkagain`); other problems found while index files of the
    view were deleted, or the cache was rebuilt, send the whole check round again on a fresh
    view once a running prune let go of its lease: damage is still there then, a rebuild is
    not. Check never takes the lease (it never writes), so prunes starting again and again
    could outrun every round: after ``_MAX_RUNS`` the last round's problems stand.
    """
    view = take_view(repo)
    report = _check_view(repo, view, read_data, subset, progress)
    runs = 1
    while not report.ok and view.changed_under(repo):
        if runs == _MAX_RUNS:
            break
        wait_for_prune(repo)
        view = take_view(repo)
        report = _check_view(repo, view, read_data, subset, None)
        runs += 1
    return report


def _check_view(
    repo: Repository,
    view: CheckView,
    read_data: bool,
    subset: tuple[int, int] | None,
    progress: ProgressFn | None,
) -> CheckReport:
    report = CheckReport()
    listing = view.listing
    damage, unindexed, superseded = _check_structure(repo, view, report, read_data, subset, progress)
    judge = SnapshotJudge(repo, damage)
    _check_snapshots(repo, view, judge, report)
    if read_data:
        missed = judge.unindexed_blobs()
        for key in unindexed:
            if in_subset(key.rsplit("/", 1)[-1], subset):
                _read_unindexed(repo, key, listing, missed, report)
    check_inventory(repo, view, superseded, report)
    check_wal(repo, report)
    _check_strays(repo, report)
    if unindexed and judge.unindexed_blobs():
        report.suggest(REPAIR_INDEX)  # the blobs snapshots miss may be in those packs
    if report.affected_snapshots:
        report.suggest(REPAIR_SNAPSHOTS)
    if REPAIR_INDEX_ALL in report.remedies and REPAIR_INDEX in report.remedies:
        report.remedies.remove(REPAIR_INDEX)
    if unindexed and report.ok:
        report.suggest(PRUNE)
    return report


def collect_damage(repo: Repository, *, read_data: bool = False) -> Damage:
    """The packs and blobs ``check`` (with ``read_data``: ``check --read-data``) finds unreadable."""
    return _check_structure(repo, take_view(repo), CheckReport(), read_data, None, None)[0]


def _check_structure(
    repo: Repository,
    view: CheckView,
    report: CheckReport,
    read_data: bool,
    subset: tuple[int, int] | None,
    progress: ProgressFn | None,
) -> tuple[Damage, list[str], set[str]]:
    """Indexes and packs: return what is damaged, the packs no index names, superseded index files."""
    named_by, superseded = _check_indexes(repo, view, report)
    damage = Damage()
    unindexed = _check_packs(repo, view, named_by, damage, report)
    if read_data:
        for name, blob_type, _size in repo.cache.packs():
            if name not in named_by or (name in damage.packs and name not in damage.resized):
                continue  # located only by a damaged index file, or by one newer than the view
            if not in_subset(name, subset):
                continue
            damage.packs.discard(name)  # a truncated pack's first blobs are still there: judge each
            _read_pack(repo, name, blob_type, named_by.get(name, []), damage, report)
            if progress:
                progress(1)
    return damage, unindexed, superseded


def _check_indexes(repo: Repository, view: CheckView, report: CheckReport) -> tuple[dict[str, list[str]], set[str]]:
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
        report.problems.append(Problem(key, _what_is(repo, key, view.listing)[0] or message))
        report.suggest(REPAIR_INDEX)
    return named_by, superseded


def _check_strays(repo: Repository, report: CheckReport) -> None:
    """FIFOs, devices and sockets where objects belong: nothing lists or reads them, check names them."""
    storage = as_capability(repo.backend, StrayEntries)
    for key, kind in storage.strays() if storage is not None else ():
        report.problems.append(
            Problem(key, Message(N_("not an object but {kind} (stray or planted); remove it"), kind=kind))
        )


def _what_is(repo: Repository, key: str, listing: Mapping[str, ObjectInfo]) -> tuple[str | None, bool]:
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


def _retired(repo: Repository, index_names: list[str]) -> bool:
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


def _check_packs(
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
        elif info is None and _retired(repo, named_by[name]):
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


def _read_pack(
    repo: Repository, name: str, blob_type: int, index_names: list[str], damage: Damage, report: CheckReport
) -> None:
    """Verify a pack's name, header and every blob the index places in it, blob by blob."""
    key = pack_key(name, blob_type)
    try:
        data = repo.load_pack(key)
    except BcpError as exc:
        damage.packs.add(name)
        if not (isinstance(exc, ObjectNotFound) and _retired(repo, index_names)):
            report.problems.append(Problem(key, message_of(exc)))
        return
    report.packs_read += 1
    report.bytes_read += len(data)
    if hashlib.sha256(data).hexdigest() != name:
        report.problems.append(Problem(key, Message(N_("pack content does not match its name (bit rot or tampering)"))))
        report.suggest(REPAIR_INDEX_ALL)
    info = repo.cache.pack_info(name)
    rows = repo.cache.pack_entries(name)
    try:
        _salt, header = parse_pack(repo.master, repo.repo_id, data, key)
    except CorruptObject as exc:
        reason = exc.message.removeprefix(key).lstrip(": ")
        report.problems.append(
            Problem(key, Message(N_("{reason}; its blobs are read at the places the index records"), reason=reason))
        )
        header = None
    bad = []
    for chunk_id, t, flags, offset, length, raw_length in rows:
        entry = BlobEntry(chunk_id, t, flags, offset, length, raw_length)
        problem = _blob_problem(repo, data, entry, info.salt if info else data[8:40], key)
        if problem:
            bad.append(problem)
            damage.blobs.add((name, chunk_id))
        else:
            report.blobs_read += 1
    if bad:
        more = f" (and {len(bad) - 1} more damaged blob(s))" if len(bad) > 1 else ""
        report.problems.append(Problem(key, bad[0] + more))
    if bad or header is None:
        report.suggest(REPAIR_INDEX_ALL)
    if header is not None:
        placed = {(e.id, e.offset, e.length) for e in header}
        missing = [r for r in rows if (r[0], r[3], r[4]) not in placed]
        if missing:
            report.problems.append(
                Problem(
                    key,
                    Message(
                        N_("{count} blob(s) the index places in this pack are not in its header"), count=len(missing)
                    ),
                )
            )


def _blob_problem(repo: Repository, data: bytes, entry: BlobEntry, salt: bytes, key: str) -> str | None:
    if entry.offset + entry.length > len(data):
        return f"blob {entry.id.hex()[:16]} lies beyond the end of the pack"
    try:
        sealed = memoryview(data)[entry.offset : entry.offset + entry.length]
        payload = decrypt_blob(repo.cipher_for(salt), repo.repo_id, entry, sealed, key)
        what = Message(N_("blob {blob} in {key}"), blob=entry.id.hex()[:16], key=key)
        plain = compress.decode(payload, entry.flags, entry.raw_length, what)
    except CorruptObject as exc:
        return exc.message
    if repo.master.chunk_id_of(plain) != entry.id:
        return f"blob {entry.id.hex()[:16]} does not match its id"
    return None


def _check_snapshots(repo: Repository, view: CheckView, judge: SnapshotJudge, report: CheckReport) -> None:
    """The snapshots of the view; one committed meanwhile is the next check's."""
    errors: dict[str, str] = {}
    snapshots = list_snapshots(repo, errors=errors, ids=view.snapshot_ids, superseded=True)
    report.snapshots = len(snapshots) + len(errors)
    for snapshot_id, message in sorted(errors.items()):
        key = f"snapshots/{snapshot_id}"
        what, extra = _what_is(repo, key, view.listing)
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
                where = f"snapshot {snapshot.short_id} tree blob {verdict.tree_id[:16]}"
                report.problems.append(Problem(where, verdict.unreadable))
            elif verdict.damaged_files:
                first = verdict.damaged_files[0]
                reason, more = first.reason, len(verdict.damaged_files) - 1
                if more:
                    reason = Message(
                        N_("{reason} (and {more} more file(s) of this tree blob)"), reason=reason, more=more
                    )
                report.problems.append(Problem(f"snapshot {snapshot.short_id} file {first.path!r}", reason))
        report.affected_snapshots.append(snapshot.id)


def _read_unindexed(
    repo: Repository, key: str, listing: Mapping[str, ObjectInfo], wanted: set[bytes], report: CheckReport
) -> None:
    """Say what a pack no index names is: which blobs snapshots miss it holds, a copy, or damage.

    The note replaces the structural "in no index" note of the same pack.
    """
    report.notes[:] = [note for note in report.notes if note.object != key]
    try:
        data = repo.load_any(key)
    except OversizedObject as exc:  # never anything bcpctl wrote: a planted object is worth a red check
        report.problems.append(Problem(key, Message(N_("in no index: {reason}; remove it"), reason=message_of(exc))))
        return
    except BcpError as exc:
        report.notes.append(Problem(key, Message(N_("in no index, and unreadable: {reason}"), reason=message_of(exc))))
        return
    report.packs_read += 1
    report.bytes_read += len(data)
    found = identify(repo, key, data, listing)
    if found.copy_of:
        report.notes.append(
            Problem(key, Message(N_("in no index: a copy of {copy_of} (prune removes it)"), copy_of=found.copy_of))
        )
    elif found.kind not in PACK_KINDS:
        report.notes.append(
            Problem(key, Message(N_("in no index, and not a readable pack (a stray or a damaged leftover)")))
        )
    else:
        _salt, entries = parse_pack(repo.master, repo.repo_id, data, key)
        needed = sum(1 for e in entries if e.id in wanted)
        state = "" if found.named_by_content else Message(N_(", but its content does not match its name"))
        if needed:
            report.notes.append(
                Problem(
                    key,
                    Message(
                        N_("in no index{state}: holds {needed} blob(s) snapshots miss; run '{command}'"),
                        state=state,
                        needed=needed,
                        command=REPAIR_INDEX,
                    ),
                )
            )
        else:
            report.notes.append(
                Problem(
                    key,
                    Message(
                        N_("in no index{state}: none of its {count} blob(s) is missed"), state=state, count=len(entries)
                    ),
                )
            )
