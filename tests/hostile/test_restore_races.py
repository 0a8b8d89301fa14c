"""Hostile finding: a directory renamed out of the target during a restore receives the rest
of its files outside the target, and the restore reports them restored and verified.

The restore caches a descriptor per directory for the whole restore (directories are opened
first, files written later). Whoever can rename inside the target (a user restoring their
own home as root, anything racing in a shared target) moves ``target/d`` elsewhere on the
file system; every later file of ``d`` is written through the cached descriptor into the moved
directory, outside ``--target``, and counted as restored. Found with a loop of
``mv target/X/sub /tmp/movedN; ln -s /tmp/victim target/X/sub`` during a restore: nothing went
through the symlink (that held), but 4500 files landed in /tmp/moved*, while the restore said
"3 entries not restored … everything else is restored and verified".
"""

from __future__ import annotations

import os
from pathlib import Path

from backup.errors import VerificationFailed
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source


def test_files_reported_restored_are_in_the_target(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a-first").write_bytes(os.urandom(9 * 1024 * 1024))  # progress is reported after 8 MiB
    for i in range(20):
        (src / "d" / f"f{i:02d}").write_text(f"file {i}\n")
    run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="race"))
    target, elsewhere = tmp_path / "target", tmp_path / "elsewhere"
    moved = False

    def rename_out(_amount: int) -> None:  # the racing process, at the first progress report
        nonlocal moved
        if not moved:
            os.rename(target / "d", elsewhere)
            moved = True

    try:
        restore_snapshot(repo, find_snapshot(repo, "latest:race"), target, workers=1, progress=rename_out)
    except VerificationFailed:
        return  # naming what is not in the target is an honest outcome
    assert moved
    outside = sorted(p.name for p in elsewhere.iterdir()) if elsewhere.exists() else []
    missing = [f"d/f{i:02d}" for i in range(20) if not (target / "d" / f"f{i:02d}").exists()]
    assert not missing, f"restore succeeded, but {len(missing)} files are not in the target; outside it: {outside}"
