"""tag (a new snapshot object supersedes the old, which stays verifiable) and stats."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.check import check_repository
from backup.forget import forget_snapshots
from backup.retention import RetentionPolicy
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import list_snapshots, load_snapshot, save_snapshot
from backup.sources import parse_source
from backup.stats import snapshot_stats
from backup.tagging import new_tags, tag_snapshot
from dc.errors import UsageError
from tests.backup.conftest import make_tree


@pytest.fixture
def two(repo, tmp_path: Path):  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", {"a.txt": "alpha\n", "same.bin": b"s" * 5000, "d/b.txt": "bravo\n"})
    first = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files", tags={"day": "1"}))
    (src / "a.txt").write_text("alpha, again\n")
    second = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files"))
    return find_snapshot(repo, first.snapshot_id), find_snapshot(repo, second.snapshot_id)


def test_new_tags_rules() -> None:
    assert new_tags({"a": "1", "b": "2"}, add={"c": "3"}, remove=["a"]) == {"b": "2", "c": "3"}
    assert new_tags({"a": "1"}, set_to={"z": "9"}) == {"z": "9"}
    assert new_tags({"a": "1"}, add={"a": "2"}) == {"a": "2"}
    for bad in ({"add": {"c": "3"}, "set_to": {"z": "9"}}, {}):
        with pytest.raises(UsageError):
            new_tags({}, **bad)  # type: ignore[arg-type]


def test_tag_supersedes_in_listings_and_leaves_the_original_verifiable(repo, two) -> None:  # type: ignore[no-untyped-def]
    first, _ = two
    key = f"snapshots/{first.id}"
    original_bytes = repo.backend.load(key)
    done = tag_snapshot(repo, first, add={"keep": "audit"}, remove=["day"])
    assert done.changed and done.original == first.id and done.snapshot.tags == {"keep": "audit"}
    listed = list_snapshots(repo)
    assert first.id not in {s.id for s in listed} and done.snapshot.id in {s.id for s in listed}
    assert len(listed) == 2 and [s.time for s in listed] == sorted(s.time for s in listed)
    assert repo.backend.load(key) == original_bytes  # never rewritten
    assert load_snapshot(repo, first.id).tags == {"day": "1"}
    assert find_snapshot(repo, first.id[:12]).id == first.id  # still reachable by its id
    report = check_repository(repo, read_data=True)
    assert report.ok, report.problems
    assert report.snapshots == 3  # the original is checked too
    again = tag_snapshot(repo, done.snapshot, add={"keep": "audit"})
    assert not again.changed and len(list_snapshots(repo, superseded=True)) == 3


def test_forgetting_a_retagged_snapshot_removes_its_older_labels(repo, two) -> None:  # type: ignore[no-untyped-def]
    first, second = two
    later = tag_snapshot(repo, tag_snapshot(repo, first, add={"x": "1"}).snapshot, add={"y": "2"}).snapshot
    assert {s.id for s in list_snapshots(repo)} == {later.id, second.id}
    forget_snapshots(repo, RetentionPolicy(last=1), now=datetime.now(UTC))
    assert {s.id for s in list_snapshots(repo, superseded=True)} == {second.id}


def test_a_snapshot_claiming_to_supersede_different_content_hides_nothing(repo, two) -> None:  # type: ignore[no-untyped-def]
    first, second = two
    forged = save_snapshot(repo, dataclasses.replace(second, supersedes=first.id, id=""))
    assert {s.id for s in list_snapshots(repo)} == {first.id, second.id, forged.id}


def test_bcpctls_own_snapshots_cannot_be_retagged(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "state").write_bytes(os.urandom(100))
    done = run_backup(repo, BackupRequest(parse_source(f"command:cat {tmp_path / 'state'}"), system="_control"))
    with pytest.raises(UsageError, match="reserved"):
        tag_snapshot(repo, find_snapshot(repo, done.snapshot_id), add={"a": "b"})


def test_stats_restore_size_and_raw_data(repo, two) -> None:  # type: ignore[no-untyped-def]
    first, second = two
    restore = snapshot_stats(repo, [first, second], "restore-size")
    one_size = len("alpha\n") + 5000 + len("bravo\n")
    assert (restore.files, restore.bytes) == (6, one_size + one_size + len(", again"))
    raw_one = snapshot_stats(repo, [first], "raw-data")
    raw_both = snapshot_stats(repo, [first, second], "raw-data")
    assert raw_one.blobs_missing == raw_both.blobs_missing == 0
    # the shared files are counted once: the second snapshot adds one changed file and its tree
    assert raw_one.bytes >= one_size and raw_both.bytes - raw_one.bytes < 2 * one_size
    assert raw_both.blobs > raw_one.blobs and raw_both.stored_bytes > 0
