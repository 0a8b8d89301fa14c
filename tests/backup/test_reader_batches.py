"""Forked readers take small files in batches, one message per batch each way, and still
store every file: small and large interleaved, and a lone changed file among unchanged ones
(its batch is sent as soon as the walk waits for it, never held until it fills)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.backup.conftest import make_tree, tree_digest

_SCRIPT = """
import json
from pathlib import Path
import backup.forked as forked
from storage.local import LocalBackend
from backup.opening import open_repository
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from tests.conftest import PASSWORD

messages = []
real_send = forked.Worker.send
def counting_send(self, message):
    if message is not None:
        messages.append(len(message))
    real_send(self, message)
forked.Worker.send = counting_send
with open_repository(LocalBackend({repo!r}), PASSWORD) as repo:
    request = BackupRequest(parse_source("path:{src}"), system="s1", workers=3)
    result = run_backup(repo, request)
    restore_snapshot(repo, find_snapshot(repo, result.snapshot_id), Path({out!r}), workers=1)
print(json.dumps({{"messages": messages, "new": result.files_new, "changed": result.files_changed}}))
"""


def _backup_and_restore(repo_dir: Path, src: Path, out: Path) -> dict[str, object]:
    script = textwrap.dedent(_SCRIPT.format(repo=str(repo_dir), src=src, out=str(out)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert tree_digest(out) == tree_digest(src)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_small_files_travel_in_batches_and_every_file_is_stored(repo_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(18)
    files: dict[str, bytes | str] = {
        f"d{i % 9}/f{i:03d}.txt": rng.randbytes(rng.randint(0, 20_000)) for i in range(300)
    }
    for i in (17, 150, 290):  # larger than a chunk's minimum: each goes alone, between batches
        files[f"d{i % 9}/f{i:03d}.txt"] = rng.randbytes(300_000 + i)
    src = make_tree(tmp_path / "src", files)
    first = _backup_and_restore(repo_dir, src, tmp_path / "out1")
    assert first["new"] == len(files)
    messages = first["messages"]
    assert isinstance(messages, list)
    assert sum(messages) == len(files)
    assert len(messages) < len(files) // 4  # batches, not a message per file
    assert max(messages) > 1

    # one changed small file among hundreds of unchanged ones: its batch of one goes out at once
    changed = src / "d4/f121.txt"
    changed.write_bytes(b"edited " * 100)
    os.utime(changed, ns=(1, 1))
    second = _backup_and_restore(repo_dir, src, tmp_path / "out2")
    assert (second["changed"], second["messages"]) == (1, [1])
