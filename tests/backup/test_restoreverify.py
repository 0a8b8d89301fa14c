"""backup/restoreverify.py: the verifier process that hashes every writer's files in lanes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup import restorer, restoreverify
from backup.filehasher import Ticket
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapshot import find_snapshot
from backup.sources import parse_source
from dc.errors import BcpError
from tests.backup.conftest import make_tree, tree_digest

needs_lanes = pytest.mark.skipif(not restorer.lanes_available(), reason="no AVX-512 lanes on this CPU")


@pytest.fixture
def snapshot(repo, tmp_path: Path):  # type: ignore[no-untyped-def]
    files: dict[str, bytes | str] = {f"d{i % 7}/{i:04d}.bin": os.urandom(i * 53 % 9000) for i in range(400)}
    src = make_tree(tmp_path / "src", files)
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []
    return src, find_snapshot(repo, "latest:s1")


@needs_lanes
@pytest.mark.parametrize("workers", [1, 2])
def test_every_writers_files_are_verified(repo, snapshot, tmp_path: Path, monkeypatch, workers: int) -> None:  # type: ignore[no-untyped-def]
    # Small batches, so the files of several writers interleave at the verifier.
    monkeypatch.setattr(restoreverify, "_BATCH_FILES", 3)
    sent: list[int] = []
    original = restoreverify.FileSender._flush

    def counted(self):  # type: ignore[no-untyped-def]
        sent.append(len(self._batch))
        original(self)

    monkeypatch.setattr(restoreverify.FileSender, "_flush", counted)
    src, snap = snapshot
    result = restore_snapshot(repo, snap, tmp_path / "out", workers=workers)
    assert result.files == result.verified_files == 400 and not result.mismatches
    assert tree_digest(tmp_path / "out") == tree_digest(src)
    if workers == 1:  # the leader's writer runs in this process, so its batches are seen here
        assert sum(sent) == 400


@needs_lanes
@pytest.mark.timeout(120)
def test_a_dead_verifier_is_a_one_line_error_not_a_hang(repo, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # More file records than a pipe holds (64 KiB): were a reading end left open anywhere but
    # in the dead verifier, a writer would block on the full pipe forever.
    src = make_tree(tmp_path / "src", {f"d{i % 9}/{i:05d}-with-a-longer-name.txt": "x" for i in range(2000)})
    assert run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="s1")).errors == []

    def dies(channel, repo, **kwargs):  # type: ignore[no-untyped-def]
        os._exit(7)

    monkeypatch.setattr(restoreverify, "_verify", dies)
    with pytest.raises(BcpError) as failed:
        restore_snapshot(repo, find_snapshot(repo, "latest:s1"), tmp_path / "out", workers=2)
    assert "\n" not in str(failed.value)
    assert "verifier" in str(failed.value) or "exited with 7" in str(failed.value)


def test_finished_files_are_judged_even_behind_a_slow_one(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(restoreverify, "_SWEEP_AT", 10)
    outcomes = restoreverify._Outcomes()
    slow = Ticket("/t/big")
    outcomes.expect(slow, "big", 5, "aa")
    for i in range(30):
        ticket = Ticket(f"/t/{i}")
        ticket.finish(bytes.fromhex("bb"), 1, None)
        outcomes.expect(ticket, str(i), 1, "bb" if i != 17 else "cc")
    # a large file at the front does not keep every finished one waiting behind it
    assert len(outcomes._waiting) < 10 and outcomes.verified >= 20 and outcomes.mismatches == ["17"]
    slow.finish(bytes.fromhex("aa"), 5, None)
    outcomes.finish()
    assert outcomes.verified == 30 and outcomes.mismatches == ["17"]


def test_a_file_the_hasher_could_not_read_is_a_mismatch() -> None:
    outcomes = restoreverify._Outcomes()
    ticket = Ticket("/t/gone")
    ticket.finish(None, 0, "No such file or directory")
    outcomes.expect(ticket, "gone", 0, "e3b0")
    outcomes.finish()
    assert outcomes.verified == 0 and outcomes.mismatches == ["gone"]
