"""Hostile finding: ``wal get --spool`` and ``wal push --spool`` answer PostgreSQL from the spool
before reading the configuration, trusting whatever is in it: a segment file there is handed
to replay, a record there acknowledges a segment as archived. The spool was never checked to be
private (deployment.md asks for "a directory only postgres can write"; ``mkdir(exist_ok=True)``
keeps a directory someone else made). In a spool others can write, a planted segment was
replayed as the database's history, and a planted record made PostgreSQL recycle a segment
that was never archived. Now a spool owned by another user or writable by group or others is
never answered from: ``wal get`` fetches from the archive instead (a failing restore_command
would end recovery early), ``wal push`` refuses with one line (PostgreSQL retries; nothing lost).
"""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

import pytest

from backup.walspool import from_record, from_spool
from dc.errors import UsageError

NAME = "000000010000000000000003"
KEY = f"wal/goka-juki/{NAME}/" + "ab" * 32


def _spool(tmp_path: Path, mode: int, *, other_owner: bool = False) -> Path:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / NAME).write_bytes(b"planted WAL")
    segment = tmp_path / "pg_wal" / NAME
    segment.parent.mkdir()
    segment.write_bytes(b"the real segment")
    (spool / f"{NAME}.archived").write_text(f"{hashlib.sha256(segment.read_bytes()).hexdigest()} {KEY}\n")
    if other_owner:
        os.chown(spool, pwd.getpwnam("nobody").pw_uid, -1)
    spool.chmod(mode)
    return spool


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_a_spool_others_can_write_is_never_answered_from(tmp_path: Path, mode: int) -> None:
    spool = _spool(tmp_path, mode)
    target = tmp_path / "RECOVERYXLOG"
    assert from_spool("goka-juki", NAME, target, spool) is None
    assert not target.exists() and (spool / NAME).exists()
    with pytest.raises(UsageError, match="spool") as refused:
        from_record("goka-juki", tmp_path / "pg_wal" / NAME, spool)
    assert "\n" not in refused.value.message


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_spool_of_another_user_is_never_answered_from(tmp_path: Path) -> None:
    spool = _spool(tmp_path, 0o700, other_owner=True)
    assert from_spool("goka-juki", NAME, tmp_path / "RECOVERYXLOG", spool) is None
    with pytest.raises(UsageError, match="spool"):
        from_record("goka-juki", tmp_path / "pg_wal" / NAME, spool)


@pytest.mark.parametrize("mode", [0o700, 0o755])
def test_a_private_spool_still_answers(tmp_path: Path, mode: int) -> None:
    spool = _spool(tmp_path, mode)
    assert from_record("goka-juki", tmp_path / "pg_wal" / NAME, spool) is not None
    target = tmp_path / "RECOVERYXLOG"
    assert from_spool("goka-juki", NAME, target, spool) is not None and target.read_bytes() == b"planted WAL"
