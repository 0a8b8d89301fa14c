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

from collections.abc import Callable

from backup.checkdata import read_pack, read_unindexed
from backup.checkreport import PRUNE, REPAIR_INDEX, REPAIR_INDEX_ALL, REPAIR_SNAPSHOTS, CheckReport
from backup.checkstructure import check_indexes, check_packs, check_snapshots, check_strays
from backup.checkview import CheckView, take_view
from backup.damage import Damage, SnapshotJudge
from backup.inventory import check_inventory, wait_for_prune
from backup.repository import Repository
from backup.walcheck import check_wal
from dc.errors import N_, UsageError

ProgressFn = Callable[[int], None]

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
    check_snapshots(repo, view, judge, report)
    if read_data:
        missed = judge.unindexed_blobs()
        for key in unindexed:
            if in_subset(key.rsplit("/", 1)[-1], subset):
                read_unindexed(repo, key, listing, missed, report)
    check_inventory(repo, view, superseded, report)
    check_wal(repo, report)
    check_strays(repo, report)
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
    named_by, superseded = check_indexes(repo, view, report)
    damage = Damage()
    unindexed = check_packs(repo, view, named_by, damage, report)
    if read_data:
        for name, blob_type, _size in repo.cache.packs():
            if name not in named_by or (name in damage.packs and name not in damage.resized):
                continue  # located only by a damaged index file, or by one newer than the view
            if not in_subset(name, subset):
                continue
            damage.packs.discard(name)  # a truncated pack's first blobs are still there: judge each
            read_pack(repo, name, blob_type, named_by.get(name, []), damage, report)
            if progress:
                progress(1)
    return damage, unindexed, superseded
