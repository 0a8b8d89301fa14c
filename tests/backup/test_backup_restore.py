"""Backup and restore against a real local repository: round trips, incrementals, sources."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.dbrestore import verify_sqlite
from backup.errors import HostileSnapshot, SnapshotNotFound, SourceError, TargetNotEmpty, VerificationFailed
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot, list_snapshots, save_snapshot
from backup.sources import parse_source
from backup.tree import TreeWriter
from backup.writer import BlobWriter
from tests.backup.conftest import make_tree, tree_digest


def backup(repo, source: str, system: str = "s1"):  # type: ignore[no-untyped-def]
    return run_backup(repo, BackupRequest(parse_source(source), system=system, tenant="goka"))


def test_round_trip_preserves_files_links_modes_and_times(repo, tmp_path: Path) -> None:
    src = make_tree(
        tmp_path / "src",
        {
            "住民/台帳.csv": "宛名番号,氏名\n1,山田太郎\n",
            "empty": b"",
            "bin/scan.tif": os.urandom(3 * 1024 * 1024 + 17),
            "bin/link": "->scan.tif",
            "deep/a/b/c/d.txt": "deep",
        },
    )
    os.chmod(src / "empty", 0o640)
    os.utime(src / "deep/a/b/c/d.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    (src / "emptydir").mkdir()
    result = backup(repo, f"path:{src}")
    assert result.files_new == 4 and result.errors == []
    out = tmp_path / "out"
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out)
    assert restored.verified_files == 4 and restored.symlinks == 1 and not restored.failed
    assert tree_digest(out) == tree_digest(src)
    assert (out / "empty").stat().st_mode & 0o777 == 0o640
    assert (out / "deep/a/b/c/d.txt").stat().st_mtime_ns == 1_600_000_000_123_456_789


def test_incremental_skips_unchanged_files_and_dedups_changes(repo, tmp_path: Path) -> None:
    big = bytearray(os.urandom(8 * 1024 * 1024))
    src = make_tree(tmp_path / "src", {"dump.sql": bytes(big), **{f"docs/{i}.txt": f"doc {i}" for i in range(50)}})
    first = backup(repo, f"path:{src}")
    second = backup(repo, f"path:{src}")
    assert second.files_unmodified == 51 and second.bytes_read == 0 and second.bytes_added < 64 * 1024
    assert second.parent == first.snapshot_id
    big[4_000_000:4_000_000] = "INSERT INTO residents VALUES (99999, '新しい住民');\n".encode()
    (src / "dump.sql").write_bytes(bytes(big))
    third = backup(repo, f"path:{src}")
    assert third.files_changed == 1 and third.files_unmodified == 50
    assert third.bytes_read == len(big)
    assert third.bytes_added < 5 * 1024 * 1024, "an insertion must not re-store the whole dump"
    restore_snapshot(repo, find_snapshot(repo, third.snapshot_id[:10]), tmp_path / "out")
    assert (tmp_path / "out/dump.sql").read_bytes() == bytes(big)


def test_single_file_source(repo, tmp_path: Path) -> None:
    (tmp_path / "one.bin").write_bytes(b"x" * 1000)
    backup(repo, f"path:{tmp_path / 'one.bin'}")
    restore_snapshot(repo, find_snapshot(repo, "latest"), tmp_path / "out")
    assert (tmp_path / "out/one.bin").read_bytes() == b"x" * 1000


def test_sqlite_source_records_and_verifies_row_counts(repo, tmp_path: Path) -> None:
    db = tmp_path / "juki.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE residents (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO residents(name) VALUES (?)", [(f"住民{i}",) for i in range(1234)])
    conn.execute("CREATE TABLE households (id INTEGER)")
    conn.commit()
    result = backup(repo, f"sqlite:{db}", system="goka-juki")
    conn.execute("DELETE FROM residents WHERE id < 100")  # after the backup: must not show in the restore
    conn.commit()
    conn.close()
    assert result.tables == {"residents": 1234, "households": 0}
    snap = find_snapshot(repo, "latest:goka-juki")
    restore_snapshot(repo, snap, tmp_path / "out")
    assert verify_sqlite(snap, tmp_path / "out/juki.sqlite") == {}
    assert snap.verify["tables"]["residents"] == 1234


def test_command_source_and_failing_command(repo, tmp_path: Path) -> None:
    result = backup(repo, "command:printf 'line1\\nline2\\n'", system="cmd")
    assert result.bytes_total == 12
    restore_snapshot(repo, find_snapshot(repo, "latest:cmd"), tmp_path / "out")
    assert (tmp_path / "out/stdout").read_bytes() == b"line1\nline2\n"
    before = len(list_snapshots(repo))
    with pytest.raises(SourceError, match="exited with 3"):
        backup(repo, "command:sh -c 'echo partial; exit 3'", system="cmd")
    assert len(list_snapshots(repo)) == before, "a failed source must not commit a snapshot"


def test_missing_source_is_an_error(repo, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        backup(repo, f"path:{tmp_path / 'nope'}")


def test_snapshot_refs(repo, tmp_path: Path) -> None:
    with pytest.raises(SnapshotNotFound):
        find_snapshot(repo, "latest")
    with pytest.raises(SnapshotNotFound):
        find_snapshot(repo, "not-hex")
    make_tree(tmp_path / "src", {"a": "1"})
    result = backup(repo, f"path:{tmp_path / 'src'}")
    assert find_snapshot(repo, result.snapshot_id[:6]).id == result.snapshot_id
    with pytest.raises(SnapshotNotFound):
        find_snapshot(repo, "latest:other-system")


def craft(repo, entries: list[dict]) -> Snapshot:  # type: ignore[no-untyped-def]
    """A snapshot with arbitrary (hostile) entries, as an attacker holding a key could write."""
    writer = BlobWriter(repo)
    tree = TreeWriter(writer.add_tree, 1)
    payload = b"owned"
    chunk_id = repo.master.chunk_id_of(payload)
    writer.add(chunk_id, payload)
    for entry in entries:
        if entry["type"] == "file":
            entry = {
                "size": 5,
                "sha256": __import__("hashlib").sha256(payload).hexdigest(),
                "chunks": [chunk_id.hex()],
                "mode": 0o644,
                "mtime": 0,
                **entry,
            }
        tree.add(entry)
    ids = tree.finish()
    writer.flush()
    writer.close()
    snap = Snapshot(time=datetime.now(UTC), hostname="h", username="u", source_kind="path", source_spec="/x", tree=ids)
    return save_snapshot(repo, snap)


@pytest.mark.parametrize(
    "entries",
    [
        [{"path": "../escape", "type": "file"}],
        [{"path": "/etc/passwd", "type": "file"}],
        [{"path": "a/../../escape", "type": "file"}],
        [{"path": "b", "type": "file"}, {"path": "a", "type": "file"}],
        [{"path": "a", "type": "file"}, {"path": "a", "type": "file"}],
        [{"path": "l", "type": "symlink", "target": "sub"}, {"path": "l/x", "type": "file"}],
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "unsorted", "duplicate", "file-under-link"],
)
def test_hostile_snapshots_are_refused_before_any_write(repo, tmp_path: Path, entries: list[dict]) -> None:
    snap = craft(repo, entries)
    target = tmp_path / "target"
    with pytest.raises(HostileSnapshot):
        restore_snapshot(repo, snap, target)
    assert not target.exists() or list(target.iterdir()) == []
    assert not (tmp_path / "escape").exists() and not (tmp_path / "outside").exists()


def test_restore_never_writes_through_a_planted_link(repo, tmp_path: Path) -> None:
    snap = craft(repo, [{"path": "sub", "type": "dir"}, {"path": "sub/file", "type": "file"}])
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", target / "sub")
    with pytest.raises(TargetNotEmpty, match="--overwrite"):
        restore_snapshot(repo, snap, target)
    restore_snapshot(repo, snap, target, overwrite="always")  # the link is replaced, never followed
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert not (target / "sub").is_symlink() and (target / "sub/file").read_bytes() == b"owned"


def _snapshot_of(repo, files: dict[str, tuple[bytes, int, str]]) -> Snapshot:  # type: ignore[no-untyped-def]
    """Files made of one repeated blob each: ``path -> (blob, repetitions, recorded sha256)``."""
    writer = BlobWriter(repo)
    tree = TreeWriter(writer.add_tree, 1)
    for path, (blob, times, sha) in sorted(files.items()):
        chunk_id = repo.master.chunk_id_of(blob)
        writer.add(chunk_id, blob)
        entry = {"path": path, "type": "file", "size": len(blob) * times, "sha256": sha, "mode": 0o644, "mtime": 0}
        tree.add({**entry, "chunks": [chunk_id.hex()] * times})
    ids = tree.finish()
    writer.flush()
    writer.close()
    snap = Snapshot(time=datetime.now(UTC), hostname="h", username="u", source_kind="path", source_spec="/x", tree=ids)
    return save_snapshot(repo, snap)


@pytest.mark.parametrize("workers", [1, 2])
def test_restore_names_every_file_whose_content_differs_from_the_record(repo, tmp_path: Path, workers: int) -> None:
    # Small files are verified after writing, several at once; big ones while being written.
    # A wrong record must be caught on both paths, and the right ones must pass beside it.
    big = os.urandom(1 << 20)
    files = {
        f"d/small{i:02d}": (bytes([i]) * (100 + i), 1, hashlib.sha256(bytes([i]) * (100 + i)).hexdigest())
        for i in range(40)
    }
    files["d/small07"] = (files["d/small07"][0], 1, "0" * 64)
    files["d/big-good"] = (big, 9, hashlib.sha256(big * 9).hexdigest())
    files["d/big-bad"] = (big, 10, hashlib.sha256(big * 9).hexdigest())
    files["e/small-bad"] = (b"x" * 5000, 1, hashlib.sha256(b"y" * 5000).hexdigest())
    snap = _snapshot_of(repo, files)
    with pytest.raises(VerificationFailed) as failure:
        restore_snapshot(repo, snap, tmp_path / "out", workers=workers)
    message = str(failure.value)
    assert message.startswith(f"snapshot {snap.short_id}: 3 entries not restored")
    for bad in ("d/small07", "d/big-bad", "e/small-bad"):
        assert bad in message
        assert not (tmp_path / "out" / bad).exists()  # nothing unverified under a final name
    assert "big-good" not in message and "small08" not in message
    assert (tmp_path / "out/d/big-good").read_bytes() == big * 9


@pytest.mark.parametrize("workers", [2, 3])
def test_many_more_files_than_the_workers_queue_round_trip(repo, tmp_path: Path, workers: int) -> None:
    # More files than a worker may have queued (64): the walk waits for answers, taking them
    # off the pipes as they come, and the tree still comes out complete and in order.
    rng = random.Random(workers)
    files: dict[str, bytes | str] = {f"d{i % 7}/f{i:04d}": rng.randbytes(rng.randrange(0, 40_000)) for i in range(600)}
    files.update({f"big/{i}.bin": rng.randbytes(3_000_000 + i) for i in range(4)})
    src = make_tree(tmp_path / "src", files)
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1", workers=workers))
    assert result.files_new == 604 and result.errors == []
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), tmp_path / "out")
    assert restored.verified_files == 604 and not restored.failed
    assert tree_digest(tmp_path / "out") == tree_digest(src)
