"""``wal get`` writes PostgreSQL's %p and nothing else; ``wal push`` archives the file at %p only.

restore_command runs as the cluster's account in a directory others may have prepared: a
symlink planted where bcpctl writes its temporary copy must not turn a restore into a write
to any file that account can reach, and a %p that is not a regular file (a symlink, a FIFO)
is not a WAL file PostgreSQL handed over.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup.repository import Repository
from backup.walarchive import archived_names, get, push
from dc.errors import BcpError, UsageError

SEGMENT = "000000010000000000000003"
#: sysfs refuses to open a write-only attribute for reading, whoever asks
UNOPENABLE = "/sys/bus/pci/rescan"


def _archive(repo: Repository, tmp_path: Path, data: bytes = b"wal bytes " * 100) -> bytes:
    source = tmp_path / "pg_wal" / SEGMENT
    source.parent.mkdir()
    source.write_bytes(data)
    push(repo, "juki", source)
    return data


def test_get_never_writes_through_a_planted_temporary_name(repo: Repository, tmp_path: Path) -> None:
    data = _archive(repo, tmp_path)
    restore = tmp_path / "restore" / "pg_wal"
    restore.mkdir(parents=True)
    victim = tmp_path / "victim.conf"
    victim.write_bytes(b"keep me")
    target = restore / "RECOVERYXLOG"
    # every name a temporary copy could predictably take, planted as a symlink to the victim
    for pid in {os.getpid(), os.getppid()}:
        (restore / f".{target.name}.bcpctl-{pid}").symlink_to(victim)
    get(repo, "juki", SEGMENT, target)
    assert victim.read_bytes() == b"keep me"
    assert not target.is_symlink() and target.read_bytes() == data


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory-link"])
def test_push_archives_only_a_regular_file(repo: Repository, tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not wal")
    path = tmp_path / SEGMENT
    if kind == "symlink":
        path.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(tmp_path)
    with pytest.raises(UsageError, match="not a regular file"):
        push(repo, "juki", path)
    assert archived_names(repo, "juki") == {}


def test_a_copy_that_cannot_be_read_now_is_not_overwritten_by_other_bytes(repo: Repository, tmp_path: Path) -> None:
    """A copy that cannot be read now (refused, an I/O error, storage unreachable) is not damage:
    a push of other bytes must fail (PostgreSQL retries), not store a second version of history."""
    try:
        os.close(os.open(UNOPENABLE, os.O_RDONLY))
    except OSError:
        pass
    else:
        pytest.skip(f"{UNOPENABLE} opens here: no file to stand for an unreadable copy")
    original = _archive(repo, tmp_path)
    (key,) = archived_names(repo, "juki")[SEGMENT]
    stored = repo.backend.root / key  # type: ignore[attr-defined]
    saved = tmp_path / "saved"
    stored.rename(saved)
    stored.symlink_to(UNOPENABLE)  # a regular file this process cannot open, even as root
    other = tmp_path / "other" / SEGMENT
    other.parent.mkdir()
    other.write_bytes(b"another cluster's WAL " * 50)
    try:
        with pytest.raises(BcpError):
            push(repo, "juki", other)
    finally:
        stored.unlink()
        saved.rename(stored)
    assert archived_names(repo, "juki")[SEGMENT] == [key]
    target = tmp_path / "RECOVERYXLOG"
    get(repo, "juki", SEGMENT, target)
    assert target.read_bytes() == original
