"""``wal get --prefetch N``: one repository unlock serves the next N segments of a recovery.

Each ``restore_command`` is a new process, and opening the repository costs its Argon2id key
derivation (deliberately about a second), so a recovery replaying hundreds of segments would
spend most of its RTO unlocking. As pgBackRest's asynchronous archive-get does, a get that has
to open the repository also fetches the next N segments of the same timeline the archive
holds into a spool directory, each authenticated and its SHA-256 checked exactly as a plain
get does, and stored under its name only once whole (temporary name, then rename). The next
gets take their file from the spool without opening the repository.

Serving a spooled file is as correct as reading the archive again: an archived file is never
overwritten, so a name the archive held once always stands for the same bytes. A file
recovery never asks for (replay stops before it, a timeline switch) only costs its fetch; the
restore removes the spool once the cluster is promoted.
"""

from __future__ import annotations

from pathlib import Path

from backup.repository import Repository
from backup.walarchive import archived_names, get
from backup.walnames import is_segment
from backup.walspool import exposed
from dc.errors import N_, UsageError, os_reason


def prefetch(repo: Repository, system: str, name: str, spool: Path, ahead: int) -> list[str]:
    """Fetch up to ``ahead`` archived segments after ``name`` on its timeline into ``spool``."""
    if ahead <= 0 or not is_segment(name):
        return []
    try:
        spool.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            N_("cannot create the prefetch spool {spool}: {strerror}"), spool=spool, strerror=os_reason(exc)
        ) from None
    if exposed(spool):
        return []  # nothing is written where others could have planted links; the get itself answered
    later = sorted(n for n in archived_names(repo, system) if is_segment(n) and n[:8] == name[:8] and n > name)
    fetched = []
    for following in later[:ahead]:
        if not (spool / following).exists():
            get(repo, system, following, spool / following)
        fetched.append(following)
    return fetched
