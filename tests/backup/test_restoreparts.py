"""Large files restored in ranges by several workers (backup/restoreparts.py), and the two
snapshot formats: version 2 (BLAKE3 and chunk lengths) and version 1 (SHA-256) both restore."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import blake3
import pytest

from backup import restorefiles, restoreparts, restoreplan
from backup.errors import VerificationFailed
from backup.restoreplan import iter_entries
from backup.restorer import restore_snapshot
from backup.restoretarget import TEMP_PREFIX
from backup.run import BackupRequest, run_backup
from backup.snapindex import SnapshotIndex
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot, load_snapshot, save_snapshot
from backup.tree import TreeWriter
from backup.writer import BlobWriter
from tests.backup.conftest import make_tree, tree_state
from tests.backup.test_restore_damage import _flip_blob
from tests.conftest import Cli

_RNG = random.Random(18)
FILES: dict[str, bytes | str] = {
    # chunk boundaries depend on each repository's random chunker seed (average ~1 MiB): 2.7 MB
    # was cut into two chunks now and then, and these tests need several per file
    "dumps/juki.sql": _RNG.randbytes(5_000_000),
    "dumps/zei.sql": _RNG.randbytes(4_400_000),
    "dumps/small.sql": b"-- PostgreSQL database dump\n" * 40,
    "scans/form.pdf": _RNG.randbytes(700_000),
    **{f"docs/{i:03d}.txt": f"文書 {i}\n" * (i * 11 + 1) for i in range(25)},
}
BIG = ("dumps/juki.sql", "dumps/zei.sql")


@pytest.fixture
def snapshot(repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # the forked writers (what these tests observe), even where an earlier test left a thread
    # behind in this worker (restorefiles then writes with threads: backup.forked.can_fork)
    monkeypatch.setattr(restorefiles, "can_fork", lambda repo: True)
    # units of 1 MiB: the dumps are large files of several ranges (of a chunk or two each)
    monkeypatch.setattr(restoreplan, "UNIT_BYTES", 1 << 20)
    src = make_tree(tmp_path / "src", FILES)
    assert run_backup(repo, BackupRequest(parse_path(src), system="s1")).errors == []
    return src, find_snapshot(repo, "latest:s1")


def parse_path(src: Path):  # type: ignore[no-untyped-def]
    from backup.sources import parse_source

    return parse_source(f"path:{src}")


def _entries(repo, snap: Snapshot) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {e["path"]: e for e in iter_entries(repo, snap) if e["type"] == "file"}


def _on_disk(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_new_snapshots_record_blake3_and_chunk_lengths(repo, snapshot) -> None:  # type: ignore[no-untyped-def]
    _, snap = snapshot
    assert load_snapshot(repo, snap.id).version == 2
    for path, entry in _entries(repo, snap).items():
        content = FILES[path]
        data = content if isinstance(content, bytes) else content.encode()
        assert entry["blake3"] == blake3.blake3(data).hexdigest() and "sha256" not in entry
        assert sum(entry["sizes"]) == entry["size"] == len(data) and len(entry["sizes"]) == len(entry["chunks"])
    assert all(len(_entries(repo, snap)[p]["chunks"]) >= 3 for p in BIG)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_big_file_is_written_in_ranges_and_restored_byte_identical(  # type: ignore[no-untyped-def]
    repo, snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    src, snap = snapshot
    log = tmp_path / "ranges.log"
    real_write = restoreparts.write_range

    def write_range(part, index, read, progress):  # type: ignore[no-untyped-def]
        # a forked worker's calls are not seen by this process: each appends a line instead
        with log.open("a") as f:
            f.write(f"{part.entry['path']} {index}\n")
        return real_write(part, index, read, progress)

    monkeypatch.setattr(restoreparts, "write_range", write_range)
    result = restore_snapshot(repo, snap, tmp_path / "out", workers=workers)
    assert result.files == result.verified_files == len(FILES) and not result.failed
    assert tree_state(tmp_path / "out", times=False) == tree_state(src, times=False)
    written = sorted(log.read_text().splitlines())
    assert {line.split()[0] for line in written} == {f"{src.name}/{p}" for p in BIG} or {
        line.split()[0] for line in written
    } == set(BIG)
    assert len(written) == len(set(written)) >= 2 * len(BIG)  # several ranges each, each written once
    assert not [name for name in _on_disk(tmp_path / "out") if TEMP_PREFIX in name]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_damaged_chunk_in_the_middle_fails_that_file_alone_and_leaves_nothing_partial(  # type: ignore[no-untyped-def]
    repo, repo_dir: Path, snapshot, tmp_path: Path, workers: int
) -> None:
    src, snap = snapshot
    entries = _entries(repo, snap)
    victim = BIG[0]
    chunks = entries[victim]["chunks"]
    _flip_blob(repo, repo_dir, chunks[len(chunks) // 2])
    out = tmp_path / "out"
    with pytest.raises(VerificationFailed) as failed:
        restore_snapshot(repo, snap, out, workers=workers)
    assert str(failed.value).startswith(f"snapshot {snap.short_id}: 1 entry not restored: {victim!r}")
    assert _on_disk(out) == set(FILES) - {victim}  # nothing under its name, nor a temporary one
    expected = {k: v for k, v in tree_state(src, times=False).items() if k.decode() != victim}
    assert tree_state(out, times=False) == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_bytes_that_authenticate_but_differ_from_the_file_digest_fail_the_file(  # type: ignore[no-untyped-def]
    repo, snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # a chunk swapped for another of the same length (a record that lies): the whole-file
    # BLAKE3 catches what the per-chunk checks cannot
    _, snap = snapshot
    target = _entries(repo, snap)[BIG[1]]["chunks"][1]

    class Flipping(restorefiles.BlobReader):
        def read(self, chunk_id: bytes):  # type: ignore[no-untyped-def]
            data = super().read(chunk_id)
            if chunk_id.hex() != target:
                return data
            flipped = bytearray(data)
            flipped[7] ^= 0x01
            return flipped

    monkeypatch.setattr(restorefiles, "BlobReader", Flipping)
    out = tmp_path / "out"
    with pytest.raises(VerificationFailed, match=rf"'{BIG[1]}': the restored bytes differ from the backup record"):
        restore_snapshot(repo, snap, out, workers=workers)
    assert _on_disk(out) == set(FILES) - {BIG[1]}


def _as_version_1(repo, snap: Snapshot, lie_about: str | None = None) -> Snapshot:  # type: ignore[no-untyped-def]
    """The same files as a version-1 snapshot writes them: SHA-256 per file, no chunk lengths."""
    writer = BlobWriter(repo)
    tree = TreeWriter(writer.add_tree, 1)
    for entry in iter_entries(repo, snap):
        if entry["type"] == "file":
            content = FILES[entry["path"]]
            data = content if isinstance(content, bytes) else content.encode()
            entry = {k: v for k, v in entry.items() if k not in ("blake3", "sizes")}
            entry["sha256"] = hashlib.sha256(data + (b"!" if entry["path"] == lie_about else b"")).hexdigest()
        tree.add(entry)
    ids = tree.finish()
    writer.flush()
    writer.close()
    old = replace(snap, time=datetime.now(UTC), tree=ids, version=1, id="")
    return load_snapshot(repo, save_snapshot(repo, old).id)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_old_format_snapshot_still_restores_and_verifies(repo, snapshot, tmp_path: Path, workers: int) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    old = _as_version_1(repo, snap)
    assert old.version == 1
    restore_snapshot(repo, old, tmp_path / "out", workers=workers)
    assert tree_state(tmp_path / "out", times=False) == tree_state(src, times=False)
    lying = _as_version_1(repo, snap, lie_about=BIG[0])
    with pytest.raises(VerificationFailed, match=rf"'{BIG[0]}': the restored bytes differ"):
        restore_snapshot(repo, lying, tmp_path / "out2", workers=workers)
    assert _on_disk(tmp_path / "out2") == set(FILES) - {BIG[0]}


def test_an_incremental_keeps_an_unchanged_files_old_format_record(repo, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = snapshot
    old = _as_version_1(repo, snap)
    SnapshotIndex(repo).sync()  # written behind the index's back, as another machine would
    # the old snapshot as parent: unchanged files are not read again and keep their SHA-256
    result = run_backup(repo, BackupRequest(parse_path(src), system="s1"))
    assert find_snapshot(repo, result.snapshot_id).parent == old.id
    new = _entries(repo, find_snapshot(repo, result.snapshot_id))
    assert all("sha256" in e and "blake3" not in e for e in new.values())
    restore_snapshot(repo, find_snapshot(repo, result.snapshot_id), tmp_path / "out", workers=2)
    assert tree_state(tmp_path / "out", times=False) == tree_state(src, times=False)


def test_the_cli_exits_1_naming_a_damaged_big_file(cli: Cli, tmp_path: Path) -> None:
    # real unit size (16 MiB): a 40 MB dump is three ranges of many chunks
    files = {"big/dump.sql": os.urandom(40_000_000), "small/a.txt": b"a"}
    src = make_tree(tmp_path / "src", files)
    repo_dir = tmp_path / "repo"
    assert cli("repo", "init", "--repo", str(repo_dir)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo_dir), "--source", f"path:{src}").returncode == 0
    packs = sorted((repo_dir / "data").rglob("*/*"), key=lambda p: p.stat().st_size)
    raw = bytearray(packs[len(packs) // 2].read_bytes())
    raw[len(raw) // 2] ^= 0x40  # a blob of the dump's middle
    os.chmod(packs[len(packs) // 2], 0o644)
    packs[len(packs) // 2].write_bytes(bytes(raw))
    out = tmp_path / "out"
    done = cli("restore", "latest", "--repo", str(repo_dir), "--target", str(out), timeout=240)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "1 entry not restored: 'src/big/dump.sql'" in done.stderr or "'big/dump.sql'" in done.stderr
    assert {p.name for p in out.rglob("*") if p.is_file()} == {"a.txt"}
