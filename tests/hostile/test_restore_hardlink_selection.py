"""Hostile finding: ``restore --include`` of a hard link's second name restored nothing (exit 0,
"0 files", one warning), and ``--exclude`` of its first name silently dropped every other name
of the file too. An operator bringing back ``h/z2`` — which ``ls`` lists and ``dump`` writes —
got an empty target and a success. Every name a selection keeps must come back, with the
file's bytes, and the names it leaves out must not be written.
"""

from __future__ import annotations

import os
from pathlib import Path

from backup.patterns import Selection
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source


def _snapshot(repo, tmp_path: Path):  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    (src / "h").mkdir(parents=True)
    (src / "h/a1").write_bytes(b"linked content\n" * 1000)
    os.link(src / "h/a1", src / "h/z2")
    os.link(src / "h/a1", src / "h/z3")
    (src / "other").write_text("not selected\n")
    done = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files"))
    return find_snapshot(repo, done.snapshot_id)


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_ino)
    return found


def test_a_kept_hard_link_name_comes_back_without_its_first_name(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snap = _snapshot(repo, tmp_path)
    content = b"linked content\n" * 1000
    cases = {
        ("h/z2",): {"h/z2"},
        ("h/z*",): {"h/z2", "h/z3"},
        ("h/a1",): {"h/a1"},
    }
    for include, expected in cases.items():
        target = tmp_path / ("t-" + "-".join(include).replace("/", "_").replace("*", "x"))
        result = restore_snapshot(repo, snap, target, select=Selection(include))
        files = _files(target)
        assert set(files) == expected, (include, files.keys())
        assert all(data == content for data, _ in files.values())
        assert len({ino for _, ino in files.values()}) == 1  # kept names stay one file
        assert result.files == 1 and not result.skipped and result.failed_count == 0
    target = tmp_path / "t-excluded"
    result = restore_snapshot(repo, snap, target, select=Selection((), ("h/a1",)))
    files = _files(target)
    assert set(files) == {"h/z2", "h/z3", "other"}
    assert files["h/z2"][0] == content and files["h/z2"][1] == files["h/z3"][1]
    assert not result.skipped and result.failed_count == 0
