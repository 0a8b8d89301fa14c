"""The local snapshot index: parent and newest lookups independent of the repository's size, and
nothing it says trusted without the repository agreeing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup import snapshot as snapshot_module
from backup.errors import SnapshotNotFound
from backup.forget import forget_snapshots
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.retention import Candidate, RetentionPolicy, apply_policy
from backup.run import BackupRequest, run_backup
from backup.snapindex import SnapshotIndex
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot, list_snapshots, save_snapshot
from backup.sources import parse_source
from tests.backup.conftest import make_tree

T0 = datetime(2026, 12, 1, tzinfo=UTC)
TREE = ("0" * 64,)


def _plant(repo: Repository, system: str, minutes: int, source: str = "/srv/x") -> Snapshot:
    """A snapshot record written through the library (no data: these tests never restore)."""
    snap = Snapshot(
        time=T0 + timedelta(minutes=minutes),
        hostname="h",
        username="u",
        source_kind="path",
        source_spec=source,
        tree=TREE,
        system=system,
    )
    return save_snapshot(repo, snap)


def _rows(repo: Repository) -> sqlite3.Connection:
    return repo.cache.connection()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every snapshot object loaded and decrypted, by id."""
    seen: list[str] = []
    real = snapshot_module.load_snapshot

    def counted(repo: Repository, snapshot_id: str, *, size: int | None = None) -> Snapshot:
        seen.append(snapshot_id)
        return real(repo, snapshot_id, size=size)

    monkeypatch.setattr("backup.snapindex.load_snapshot", counted)
    monkeypatch.setattr("backup.snapshot.load_snapshot", counted)
    return seen


def test_parent_lookup_loads_one_snapshot_however_many_the_repository_holds(
    repo: Repository, tmp_path: Path, loads: list[str]
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "住民\n"})
    request = BackupRequest(parse_source(f"path:{src}"), system="goka-juki")
    first = run_backup(repo, request)
    for i in range(60):  # other systems' history
        _plant(repo, f"other-{i % 6}", i)
    SnapshotIndex(repo).sync()
    loads.clear()
    second = run_backup(repo, request)
    assert second.parent == first.snapshot_id
    assert loads == [first.snapshot_id]


def test_rebuilt_after_the_cache_is_deleted(repo: Repository) -> None:
    snaps = [_plant(repo, "goka-juki", i) for i in range(5)]
    index = SnapshotIndex(repo)
    assert index.newest("goka-juki").id == snaps[-1].id  # type: ignore[union-attr]
    _rows(repo).executescript("DROP TABLE snapshot_rows; DROP TABLE snapshot_syncs;")
    rebuilt = SnapshotIndex(repo)
    assert rebuilt.count() == 0
    assert rebuilt.newest("goka-juki").id == snaps[-1].id  # type: ignore[union-attr]
    assert rebuilt.count() == 5


@pytest.mark.parametrize(
    ("column", "value", "ask"),
    [
        ("time_us", 10**16, ("goka-juki", "path:/srv/x")),  # an old snapshot made to look newest
        ("grp", "naka-juki", ("naka-juki", None)),  # one system's snapshot moved to another
        ("source", "path:/srv/y", ("goka-juki", "path:/srv/y")),  # or to another source
        ("mac", b"\0" * 32, ("goka-juki", "path:/srv/x")),
    ],
)
def test_a_tampered_row_is_not_trusted_and_the_index_resyncs(
    repo: Repository, column: str, value: object, ask: tuple[str, str | None]
) -> None:
    old, newest = _plant(repo, "goka-juki", 0), _plant(repo, "goka-juki", 10)
    index = SnapshotIndex(repo)
    index.sync()
    _rows(repo).execute(f"UPDATE snapshot_rows SET {column}=? WHERE id=?", (value, old.id))
    found = index.newest(*ask)
    assert found is None or found.id == newest.id
    assert found is None or column in ("time_us", "mac")
    assert {s.id for s in index.of_group("goka-juki")} <= {old.id, newest.id}
    index.ensure()  # a forged row, once read, asked for a sync: the genuine record is re-learnt
    assert {s.id for s in index.of_group("goka-juki")} == {old.id, newest.id}


def test_a_row_whose_snapshot_is_missing_or_forged_in_the_repository_is_skipped(repo: Repository) -> None:
    old, middle, newest = (_plant(repo, "goka-juki", m) for m in (0, 5, 10))
    index = SnapshotIndex(repo)
    index.sync()
    repo.backend.remove(SNAPSHOT_PREFIX + newest.id)
    path = Path(repo.backend.url.removeprefix("file://")) / "snapshots" / middle.id
    stored = next(p for p in path.parent.parent.rglob(middle.id))
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.chmod(0o600)
    stored.write_bytes(bytes(data))
    found = index.newest("goka-juki")
    assert found is not None and found.id == old.id
    assert index.count() == 1


def test_a_planted_row_copied_from_another_snapshot_does_not_verify(repo: Repository) -> None:
    genuine = _plant(repo, "goka-juki", 0)
    index = SnapshotIndex(repo)
    index.sync()
    (mac,) = _rows(repo).execute("SELECT mac FROM snapshot_rows WHERE id=?", (genuine.id,)).fetchone()
    _rows(repo).execute(
        "INSERT INTO snapshot_rows VALUES (?,?,?,?,?)", ("f" * 64, "goka-juki", "path:/srv/x", 10**16, mac)
    )
    found = index.newest("goka-juki")
    assert found is not None and found.id == genuine.id


@settings(max_examples=10, derandomize=True, deadline=None)
@given(
    history=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60 * 24 * 20)), max_size=25),
    keep_daily=st.integers(0, 5),
    keep_last=st.integers(1, 3),
)
def test_retention_from_the_index_decides_as_from_the_repository(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int]], keep_daily: int, keep_last: int
) -> None:
    from backup.opening import init_repository, open_repository
    from storage.local import LocalBackend
    from tests.backup.conftest import FAST_KDF
    from tests.conftest import PASSWORD

    where = tmp_path_factory.mktemp("r") / "repo"
    init_repository(LocalBackend(where, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(where), PASSWORD) as repo:
        for system, minute in history:
            _plant(repo, system, minute)
        policy = RetentionPolicy(last=keep_last, daily=keep_daily)
        now = T0 + timedelta(days=21)
        for system in ("a", "b", "c"):
            everything = [Candidate(s.id, s.time, s.group) for s in list_snapshots(repo, system=system)]
            expected = apply_policy(everything, policy, now=now, allow_empty=True)
            decisions = forget_snapshots(repo, policy, now=now, system=system, dry_run=True, allow_empty=True)
            assert decisions == expected


def test_latest_of_a_system_loads_a_few_snapshots_however_many_the_repository_holds(
    repo: Repository, loads: list[str]
) -> None:
    """``latest:SYSTEM`` (restore, browse, tag, diff, mount, stats) costs a listing of names and
    the loads of the newest rows, not a decryption of every snapshot of the repository."""
    for i in range(600):
        _plant(repo, f"sys-{i % 12}", i)
    SnapshotIndex(repo).sync()  # what any earlier command or backup with this cache left
    loads.clear()
    found = find_snapshot(repo, "latest:sys-3")
    assert found == list_snapshots(repo, system="sys-3")[-1]
    loads.clear()
    assert find_snapshot(repo, "latest:sys-3") == found
    assert len(loads) == 1
    # another machine writes a newer one: the sync lists names and loads only that one
    newer = _plant(repo, "sys-3", 10_000)
    loads.clear()
    assert find_snapshot(repo, "latest:sys-3").id == newer.id
    assert find_snapshot(repo, "latest").id == newer.id
    assert sorted(loads) == sorted([newer.id, newer.id, newer.id])  # the sync's load, then one verify each
    with pytest.raises(SnapshotNotFound, match="no snapshot for system 'nobody'"):
        find_snapshot(repo, "latest:nobody")


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    history=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.integers(0, 5),  # few distinct minutes: many ties
            st.sampled_from(["plain", "relabel", "fake-relabel"]),
        ),
        max_size=20,
    )
)
def test_latest_from_the_index_is_the_last_of_the_listing(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str | None, int, str]]
) -> None:
    """Ties in time, re-labels (which hide their original) and snapshots that claim to supersede
    one whose content differs (which hide nothing): the index answers as the listing does."""
    from dataclasses import replace

    from backup.opening import init_repository, open_repository
    from storage.local import LocalBackend
    from tests.backup.conftest import FAST_KDF
    from tests.conftest import PASSWORD

    where = tmp_path_factory.mktemp("r") / "repo"
    init_repository(LocalBackend(where, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(where), PASSWORD) as repo:
        written: list[Snapshot] = []
        for system, minute, kind in history:
            if kind == "plain" or not written:
                written.append(_plant(repo, system or "", minute, source=f"/srv/{minute}"))
                continue
            original = written[-1]
            changed = {"tags": {"n": str(len(written))}} if kind == "relabel" else {"hostname": "elsewhere"}
            written.append(save_snapshot(repo, replace(original, id="", supersedes=original.id, **changed)))
        for ref, system in (("latest", None), ("latest:a", "a"), ("latest:b", "b")):
            listed = list_snapshots(repo, system=system)
            if not listed:
                with pytest.raises(SnapshotNotFound):
                    find_snapshot(repo, ref)
                continue
            assert find_snapshot(repo, ref) == listed[-1], ref


def test_a_sync_that_finds_nothing_new_writes_nothing(repo: Repository) -> None:
    """A read-only command (restore latest:SYSTEM) syncs; a write would cost its cache a WAL
    header and a checkpoint with two fdatasyncs on close."""
    for i in range(3):
        _plant(repo, "goka-juki", i)
    index = SnapshotIndex(repo)
    index.sync()
    db = _rows(repo)
    before = db.total_changes
    index.sync()
    assert find_snapshot(repo, "latest:goka-juki").system == "goka-juki"
    assert db.total_changes == before
    _rows(repo).execute("DELETE FROM snapshot_syncs")  # as after a forged row
    assert not index.synced()
    index.sync()
    assert index.synced()
    assert db.execute("SELECT count(*) FROM snapshot_syncs").fetchone() == (1,)
