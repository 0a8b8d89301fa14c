"""Links are data: symlinks of every kind, hard links, FIFOs, sockets and devices round-trip.

A symlink is stored with its exact target bytes and restored as a link wherever it points,
never followed; a hard link comes back as a hard link within the restore; special files
are recreated or, where they cannot be, counted and named as a warning.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.errors import CorruptObject, VerificationFailed
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot, save_snapshot
from backup.sources import parse_source
from backup.tree import TreeWriter, decode_entry, encode_entry
from backup.writer import BlobWriter
from tests.backup.conftest import link_groups, tree_state
from tests.conftest import Cli

TARGETS = {
    b"absolute": b"/etc/hostname",
    b"relative": b"sub/file.txt",
    b"escaping": b"../../../outside/secret",
    b"dangling": b"no/such/thing",
    b"not-utf8": b"x\xff\xfe",
    b"sub/up": b"../file.txt",
}


def _source(root: Path) -> Path:
    base = os.fsencode(root)
    os.makedirs(base + b"/sub")
    for name, content in ((b"file.txt", b"top\n"), (b"sub/file.txt", b"sub\n"), (b"\xffname", b"bytes\n")):
        with open(base + b"/" + name, "wb") as f:
            f.write(content)
    for name, target in TARGETS.items():
        os.symlink(target, base + b"/" + name)
    return root


def test_symlinks_of_every_kind_are_stored_exactly_and_never_followed(repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"outside, untouched")
    src = _source(tmp_path / "src" / "a" / "b")
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
    assert result.errors == []
    out = tmp_path / "out"
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out)
    assert restored.symlinks == len(TARGETS) and restored.files == 3
    for name, target in TARGETS.items():
        assert os.readlink(os.fsencode(out) + b"/" + name) == target
    assert tree_state(out) == tree_state(src)
    assert (outside / "secret").read_bytes() == b"outside, untouched"


def test_a_non_utf8_link_target_backs_up_and_restores_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    # `ln -s "$(printf 'x\xff')" s/b` once failed the whole backup with an internal error
    src = _source(tmp_path / "s")
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    backed = cli("backup", "run", "--repo", repo, "--source", f"path:{src}", "--json")
    assert backed.returncode == 0, backed.stderr
    restored = cli("restore", "latest", "--repo", repo, "--target", str(tmp_path / "out"), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["symlinks"] == len(TARGETS)
    assert tree_state(tmp_path / "out") == tree_state(src)


def test_hard_links_come_back_as_hard_links(repo, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "z").mkdir()
    (src / "a/first").write_bytes(os.urandom(200_000))
    os.link(src / "a/first", src / "z/second")
    os.link(src / "a/first", src / "third")
    (src / "pair").write_bytes(b"pair")
    os.link(src / "pair", src / "a/pair-too")
    (src / "alone").write_bytes(b"alone")
    for _ in range(2):  # the second backup is an incremental over the first
        result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
        assert result.errors == []
    out = tmp_path / "out"
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out)
    assert restored.hardlinks == 3 and restored.files == 3
    assert (
        link_groups(out)
        == link_groups(src)
        == {
            frozenset({b"a/first", b"z/second", b"third"}),
            frozenset({b"a/pair-too", b"pair"}),
        }
    )
    assert tree_state(out) == tree_state(src)


def test_fifos_and_devices_are_recreated_and_sockets_named(repo, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe", 0o620)
    os.chmod(src / "pipe", 0o620)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(src / "sock"))
    listener.close()
    (src / "file").write_bytes(b"data")
    as_root = os.geteuid() == 0
    if as_root:
        os.mknod(src / "null", stat.S_IFCHR | 0o640, os.makedev(1, 3))
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    out = tmp_path / "out"
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out)
    assert restored.skipped == ["'sock': a socket, not recreated"] and restored.skipped_count == 1
    assert restored.specials == 1 + as_root
    expected = tree_state(src)
    del expected[b"sock"]
    assert tree_state(out) == expected
    assert stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="a device node in the source needs root")
def test_devices_are_counted_and_named_not_made_when_not_root(
    repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    (src / "file").write_bytes(b"data")
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # what restore sees as an ordinary user
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), tmp_path / "out")
    assert restored.skipped_count == 2 and restored.specials == 0
    assert all("device node, made only when restoring as root" in line for line in restored.skipped)
    assert sorted(os.listdir(tmp_path / "out")) == ["file"]


def _old_snapshot(repo, entries: list[dict]) -> Snapshot:  # type: ignore[no-untyped-def]
    writer = BlobWriter(repo)
    tree = TreeWriter(writer.add_tree, 1)
    for entry in entries:
        tree.add(entry)
    ids = tree.finish()
    writer.flush()
    writer.close()
    snap = Snapshot(time=datetime.now(UTC), hostname="h", username="u", source_kind="path", source_spec="/x", tree=ids)
    return save_snapshot(repo, snap)


def test_snapshots_written_before_these_entry_types_still_restore(repo, tmp_path: Path) -> None:
    # entries as older versions wrote them: files, dirs and symlinks only; a link that leaves
    # the tree, which restore used to refuse, is restored as a link
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    snap = _old_snapshot(
        repo,
        [
            {"path": "d", "type": "dir", "mode": 0o755, "uid": 0, "gid": 0, "mtime": 1},
            {"path": "d/e", "type": "file", "mode": 0o644, "mtime": 2, "size": 0, "sha256": empty, "chunks": []},
            {"path": "d/l", "type": "symlink", "mode": 0o777, "mtime": 3, "target": "/etc/passwd"},
        ],
    )
    out = tmp_path / "out"
    restore_snapshot(repo, snap, out)
    assert os.readlink(out / "d/l") == "/etc/passwd" and (out / "d/e").read_bytes() == b""


def test_tree_entries_carry_exact_bytes_and_refuse_unknown_types() -> None:
    entry = {"path": os.fsdecode(b"d/\xff"), "type": "symlink", "target": os.fsdecode(b"x\xfe\n")}
    line = encode_entry(entry)
    assert b"target_b64" in line and b"path_b64" in line
    assert decode_entry(line, "t") == entry
    link = {"path": "b", "type": "hardlink", "link": os.fsdecode(b"a\xff")}
    assert decode_entry(encode_entry(link), "t") == link
    for bad in (
        b'{"path": "a", "type": "door"}',
        b'{"path": "a", "type": "hardlink"}',
        b'{"path": "a", "type": "symlink"}',
    ):
        with pytest.raises(CorruptObject, match="malformed tree entry"):
            decode_entry(bad, "t")


def test_hard_links_across_many_directories_survive_a_cycling_descriptor_cache(
    repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backup import restoredirs

    src = tmp_path / "src"
    for i in range(6):
        (src / f"d{i}/deep/er").mkdir(parents=True)
        (src / f"d{i}/deep/er/file").write_bytes(f"content {i}".encode())
    for i in range(6):
        os.link(src / f"d{i}/deep/er/file", src / f"d{(i + 3) % 6}/link-to-{i}")
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    monkeypatch.setattr(restoredirs, "_CACHED_DIRS", 1)  # every lookup evicts the one before
    out = tmp_path / "out"
    restored = restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out, workers=1)
    assert restored.hardlinks == 6 and not restored.failed
    assert link_groups(out) == link_groups(src) and tree_state(out) == tree_state(src)


def test_crafted_link_entries_fail_alone_and_never_reach_outside(repo, tmp_path: Path) -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    (tmp_path / "victim").write_bytes(b"outside")
    snap = _old_snapshot(
        repo,
        [
            {"path": "a", "type": "file", "mode": 0o644, "mtime": 1, "size": 0, "sha256": empty, "chunks": []},
            {"path": "b", "type": "hardlink", "link": "../victim"},
            {"path": "c", "type": "hardlink", "link": "nowhere"},
            {"path": "d", "type": "hardlink", "link": "a"},
            {"path": "e", "type": "symlink", "target": ""},
        ],
    )
    out = tmp_path / "out"
    with pytest.raises(VerificationFailed, match=r"^snapshot \w+: 3 entries not restored: 'b': .*'c': .*'e': "):
        restore_snapshot(repo, snap, out)
    assert sorted(os.listdir(out)) == ["a", "d"] and os.stat(out / "d").st_ino == os.stat(out / "a").st_ino
    assert (tmp_path / "victim").read_bytes() == b"outside" and os.stat(tmp_path / "victim").st_nlink == 1


def test_a_hard_link_whose_first_name_cannot_be_read_is_left_out_and_named(
    repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backup import readers

    src = tmp_path / "src"
    src.mkdir()
    (src / "a-first").write_bytes(b"shared")
    os.link(src / "a-first", src / "b-second")
    (src / "c-other").write_bytes(b"other")
    opener = readers._open_regular

    def unreadable(full: str):  # type: ignore[no-untyped-def]
        if full.endswith("a-first"):
            raise PermissionError(13, "Permission denied")
        return opener(full)

    monkeypatch.setattr(readers, "_open_regular", unreadable)
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1"))
    assert result.errors == [
        "a-first: Permission denied",
        "b-second: not backed up: hard link to a-first, unread",
    ]
    out = tmp_path / "out"
    restore_snapshot(repo, find_snapshot(repo, "latest:s1"), out)
    assert os.listdir(out) == ["c-other"]
