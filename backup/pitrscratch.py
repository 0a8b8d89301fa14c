"""The private cluster a restore into an existing database recovers in: claimed, and swept when its owner died.

``restore --target-dsn`` (and the point-in-time drill and failover, which use it) recovers the
system into a scratch cluster before copying its database over: a full copy of residents'
data and, while it runs, a PostgreSQL server holding memory and a port. A restoring process
killed (SIGKILL, the OOM killer, a lost host) has no ``finally`` to remove either. So each
scratch directory is created under the temporary directory with a known prefix and an owner
record (pid, its start time, the boot), and the next restore and ``drill cleanup`` sweep every
scratch whose owner is gone: its server stopped first (:func:`backup.pgcluster.stop_clusters_in`),
then the directory removed and looked up again.

Only directories of this process's own account, named with the prefix, directly under the
temporary directory and not links, are ever swept, so a name planted there by another account
never turns the sweep against its files. A scratch without an owner record is left alone for
:data:`GRACE` (it is being created) and swept after.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backup.locks import process_alive, process_start, this_machine
from backup.pgcluster import stop_clusters_in
from dc.errors import N_, Message

PREFIX = "bcpctl-pitr-"
OWNER_FILE = "bcpctl-owner.json"
#: seconds a scratch without an owner record is taken to be still in the making
GRACE = 300.0


@dataclass(frozen=True)
class ScratchOwner:
    pid: int
    start: int | None
    boot: str


@dataclass
class SweptScratch:
    path: str
    #: the owner it recorded (none: no readable record)
    pid: int | None
    removed: bool
    problem: str | None = None


def scratch_root() -> Path:
    return Path(tempfile.gettempdir())


def owner_gone(owner: ScratchOwner | None, age: float, boot: str, alive: Callable[[int, int | None], bool]) -> bool:
    """Whether a scratch's owner can no longer remove it (pure: the process check is passed in)."""
    if owner is None:
        return age > GRACE
    if owner.boot != boot:
        return True  # the machine restarted: no process of the old boot runs
    return not alive(owner.pid, owner.start)


@contextmanager
def pitr_scratch(root: Path | None = None) -> Iterator[Path]:
    """A fresh scratch directory with its owner record; removed (its server stopped) afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root or scratch_root()))
    pid = os.getpid()
    record = {"pid": pid, "start": process_start(pid), "boot": this_machine().boot_id}
    (scratch / OWNER_FILE).write_text(json.dumps(record), encoding="utf-8")
    scratch.chmod(0o711)  # the cluster's account must reach its data directory inside
    try:
        yield scratch
    finally:
        with suppress(OSError):
            stop_clusters_in(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


def _owner(scratch: Path) -> ScratchOwner | None:
    try:
        record = json.loads((scratch / OWNER_FILE).read_text(encoding="utf-8"))
        start = record.get("start")
        return ScratchOwner(int(record["pid"]), int(start) if start is not None else None, str(record["boot"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def sweep_scratch(root: Path | None = None, *, now: datetime | None = None) -> list[SweptScratch]:
    """Stop and remove every scratch under ``root`` whose owner is gone; report each."""
    root = root or scratch_root()
    moment = (now or datetime.now(UTC)).timestamp()
    boot, uid = this_machine().boot_id, os.geteuid()
    swept = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for scratch in entries:
        if not scratch.name.startswith(PREFIX):
            continue
        try:
            st = scratch.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        owner = _owner(scratch)
        if not owner_gone(owner, moment - st.st_mtime, boot, process_alive):
            continue
        found = SweptScratch(str(scratch), owner.pid if owner else None, False)
        try:
            stop_clusters_in(scratch)
            shutil.rmtree(scratch)
        except OSError as exc:
            found.problem = exc.strerror or str(exc)
        found.removed = not scratch.exists() and not scratch.is_symlink()
        if not found.removed and found.problem is None:
            found.problem = Message(N_("still exists after removal"))
        swept.append(found)
    return swept
