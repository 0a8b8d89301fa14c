"""Restore continues past damage: one bad blob costs the files that need it, nothing more.

Everything restorable is restored and verified; each damaged file is named with the
snapshot; nothing partial is left under a final name or a temporary one; exit 1.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.errors import VerificationFailed
from backup.pack import pack_key
from backup.repository import Repository
from backup.restoreplan import iter_entries
from backup.restorer import restore_snapshot
from backup.restoretarget import TEMP_PREFIX
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot
from backup.sources import parse_source
from tests.backup.conftest import make_tree, tree_state
from tests.conftest import Cli


def _files(count: int, seed: int) -> dict[str, bytes | str]:
    rng = random.Random(seed)
    return {f"d{i % 4}/f{i:03d}.bin": rng.randbytes(rng.randrange(1, 400_000)) for i in range(count)}


def _flip_blob(repo: Repository, repo_dir: Path, chunk_hex: str) -> None:
    """Flip one byte inside a stored blob (its pack then fails GCM for that blob only)."""
    for loc in repo.cache.locations(bytes.fromhex(chunk_hex)):
        path = repo_dir / pack_key(loc.pack, loc.blob_type)
        raw = bytearray(path.read_bytes())
        raw[loc.offset + loc.length // 2] ^= 0x40
        os.chmod(path, 0o644)
        path.write_bytes(bytes(raw))


def _entries(repo: Repository, snap: Snapshot) -> dict[str, dict]:
    return {entry["path"]: entry for entry in iter_entries(repo, snap) if entry["type"] == "file"}


@contextlib.contextmanager
def _bystander(present: bool) -> Iterator[None]:
    """Another thread in the process: restore then writes with threads, not forked processes."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    if present:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if present:
            thread.join()


def _on_disk(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("workers", [1, 2, "threads"])
def test_one_damaged_blob_fails_only_the_files_that_need_it(repo, repo_dir: Path, tmp_path: Path, workers) -> None:  # type: ignore[no-untyped-def]
    files = _files(41, seed=len(str(workers)))
    src = make_tree(tmp_path / "src", files)
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    snap = find_snapshot(repo, "latest:s1")
    entries = _entries(repo, snap)
    victim = sorted(entries)[13]
    bad_chunk = entries[victim]["chunks"][0]
    needing = {path for path, entry in entries.items() if bad_chunk in entry["chunks"]}
    _flip_blob(repo, repo_dir, bad_chunk)
    out = tmp_path / "out"
    with pytest.raises(VerificationFailed) as failed, _bystander(workers == "threads"):
        restore_snapshot(repo, snap, out, workers=2 if workers == "threads" else workers)
    message = str(failed.value)
    assert message.startswith(f"snapshot {snap.short_id}: {len(needing)} entr")
    assert all(repr(path) in message for path in needing) and "\n" not in message
    assert _on_disk(out) == set(files) - needing  # everything else, and nothing partial
    expected = {k: v for k, v in tree_state(src, times=False).items() if k.decode() not in needing}
    assert tree_state(out, times=False) == expected


def test_the_cli_exits_1_naming_the_first_damaged_files_and_the_count(cli: Cli, tmp_path: Path) -> None:
    files = _files(30, seed=7)
    src = make_tree(tmp_path / "src", files)
    repo_dir = tmp_path / "repo"
    assert cli("repo", "init", "--repo", str(repo_dir)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo_dir), "--source", f"path:{src}").returncode == 0
    packs = sorted((repo_dir / "data").rglob("*/*"), key=lambda p: p.stat().st_size)
    packs[-1].unlink()  # the largest data pack, many files' blobs with it
    out = tmp_path / "out"
    done = cli("restore", "latest", "--repo", str(repo_dir), "--target", str(out), timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("bcpctl: error: snapshot ") and "more; everything else is restored" in done.stderr
    restored = _on_disk(out)
    assert restored and restored < set(files)
    assert not [name for name in restored if TEMP_PREFIX in name]
    for name in restored:
        assert (out / name).read_bytes() == files[name]


def test_a_damaged_tree_blob_costs_only_the_entries_it_lists(repo, repo_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # names long enough that the file list spans several metadata blobs
    files: dict[str, bytes | str] = {f"dir{i % 5}/{'n' * 150}{i:04d}": f"{i}\n" for i in range(900)}
    src = make_tree(tmp_path / "src", files)
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    snap = find_snapshot(repo, "latest:s1")
    assert len(snap.tree) >= 3
    _flip_blob(repo, repo_dir, snap.tree[1])
    out = tmp_path / "out"
    with pytest.raises(VerificationFailed, match=rf"tree blob {snap.tree[1][:16]}"):
        restore_snapshot(repo, snap, out)
    restored = _on_disk(out)
    assert 0 < len(restored) < len(files)
    assert all((out / name).read_text() == files[name] for name in restored)


def test_a_hard_link_to_a_damaged_file_is_named_too(repo, repo_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", {"a/first": os.urandom(50_000), "b/other": b"intact"})
    os.link(src / "a/first", src / "b/second")
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    snap = find_snapshot(repo, "latest:s1")
    _flip_blob(repo, repo_dir, _entries(repo, snap)["a/first"]["chunks"][0])
    out = tmp_path / "out"
    with pytest.raises(
        VerificationFailed, match=r"2 entries not restored: 'a/first': .*'b/second': hard link"
    ) as failed:
        restore_snapshot(repo, snap, out)
    assert "'b/other'" not in str(failed.value)
    assert _on_disk(out) == {"b/other"}
