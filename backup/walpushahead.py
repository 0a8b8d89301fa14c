"""``wal push --ahead N --spool DIR``: one repository unlock archives the next N ready segments.

Each ``archive_command`` is a new process that opens the repository, and the Argon2id key
derivation costs it about a second, so a primary that falls behind (a burst of writes, a
replica rebuild) drains its backlog at one segment per unlock. As pgBackRest's asynchronous
archive-push does, a push that opens the repository also archives the segments PostgreSQL has
already marked ready after this one (``archive_status/<name>.ready``: PostgreSQL marks a
segment ready only once it is complete), and records each one durably in the spool as
"archived with this SHA-256". When PostgreSQL then asks for that segment, the push compares the
file's SHA-256 with the record and exits 0 without opening the repository.

Both promises of ``wal push`` hold. Durable before exit 0: a record is written (temporary name,
fsync, rename, fsync of the directory) only after the repository acknowledged the object, so an
exit 0 from a record means the object was durable first. History never overwritten: a record
serves only the very bytes it names; other bytes go to the repository, which refuses them.
"""

from __future__ import annotations

from pathlib import Path

from backup.repository import Repository
from backup.walarchive import push
from backup.walnames import is_segment
from backup.walspool import write_record
from dc.errors import N_, BcpError, UsageError, os_reason


def push_ahead(repo: Repository, system: str, path: Path, spool: Path, ahead: int) -> list[str]:
    """Archive up to ``ahead`` segments PostgreSQL marked ready after ``path``; record each in ``spool``."""
    if ahead <= 0 or not is_segment(path.name):
        return []
    try:
        spool.mkdir(mode=0o700, exist_ok=True)
        ready = sorted(p.name.removesuffix(".ready") for p in (path.parent / "archive_status").glob("*.ready"))
    except OSError as exc:
        raise UsageError(
            N_("cannot use the push spool {spool}: {strerror}"), spool=spool, strerror=os_reason(exc)
        ) from None
    done = []
    for name in [n for n in ready if is_segment(n) and n > path.name][:ahead]:
        if push_recorded(repo, system, path.parent / name, spool):
            done.append(name)
    return done


def push_recorded(repo: Repository, system: str, segment: Path, spool: Path) -> bool:
    """Archive ``segment`` and only then record it in ``spool``; False when it could not be
    archived (PostgreSQL's own push of it will report what is wrong)."""
    try:
        result = push(repo, system, segment)
        write_record(spool, segment.name, result.sha256, result.key)
    except (BcpError, OSError):
        return False
    return True
