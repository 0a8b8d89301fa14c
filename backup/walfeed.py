"""The restore feeds PostgreSQL's replay: archived segments fetched in parallel, ahead of it.

A recovery replays one segment at a time and asks ``restore_command`` for each in turn; each
``wal get`` is a new process. When each of them also had to open the repository and fetch,
the RTO was the sum of those serial fetches. ``bcpctl restore`` already holds the repository
open (it unpacked the base backup), so while PostgreSQL replays it fetches the segments the
recovery will ask for next into the spool in the data directory, with a few threads, in the
order of replay (as pgBackRest's asynchronous archive-get does with its queue). PostgreSQL's
``restore_command`` then takes each file from the spool with a rename (backup/pitr.py); a
segment not there yet (the feed is behind, or recovery switched timelines) ``wal get`` fetches
from the archive itself, so the feed only ever saves time and never decides what is replayed.

With ``recovery_target_timeline = 'latest'`` PostgreSQL also asks for the history file of the
next timeline when it starts and again when it promotes, to learn whether the archive holds a
newer timeline, and when it promotes it asks for the history of the timeline it recovered on
(to copy it into the new one), which timeline 1 never has; the answer is almost always "no",
and finding that out through ``wal get`` cost a process, a configuration load and an unlock
each time, on the way to promotion. The feed answers both from the listing it made: it leaves
``<name>.absent`` in the spool for the first timeline history file the archive lacks and for
the replayed timeline's own when the archive lacks it, and the restore_command exits 1 for
them without asking (pgBackRest's asynchronous archive-get also answers "missing" from its
queue). The restore thereby reads the
archive's timelines as they were when it began, which is what a recovery to a past moment
means; a timeline created during the restore is not followed.

Each file is fetched exactly as ``wal get`` fetches it (authenticated, decompressed, its
SHA-256 checked), read for tablespace creations together with its predecessor
(backup/waltablespace.py: one is withheld, a ``<name>.refused`` left in its place), written
under a temporary name, given to the server's account, and renamed into place whole. The
spool holds at most ``window`` files not yet taken, so disk use stays bounded whatever the
recovery target; what recovery never asks for (replay stops before it) costs at most that
many fetches and is removed with the spool once the cluster is promoted.

A restored cluster starts as one that crashed (its base backup was taken running), so before
it asks for any WAL PostgreSQL fsyncs every file it can list in its data directory. The feed
has then already fetched up to ``window`` segments (16 MiB each) into the spool: files that
need no durability (a restore cut short is run again) and that replay renames away within
seconds, yet forcing them to disk cost seconds of that start. So the spool is created
writable and searchable but not readable (mode 0300) and made readable only once the server
has started (:meth:`WalFeed.started`): the start-up walk cannot open it (PostgreSQL logs
"could not open directory" and goes on), while the ``mv`` of restore_command and ``wal get``
only need its files' names. The feed itself counts its files by name, never by listing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from backup.repository import Repository
from backup.walarchive import archived_names, fetch
from backup.walnames import is_segment
from backup.walseq import DEFAULT_SEGMENT_SIZE
from backup.waltablespace import creations_in, previous_name, refusal, withhold
from dc.errors import BcpError

#: segments fetched but not yet taken by the recovery, at most (16 MiB each by default)
WINDOW = 16
#: fetches at once: local disks and S3 both serve a few parallel reads faster than one
WORKERS = 3
#: the suffix of a spool entry saying "the archive does not hold this file"
ABSENT = ".absent"
#: the spool while the server starts: its files can be renamed by name, not listed (and fsynced)
HIDDEN_MODE = 0o300


def segments_from(names: list[str], first: str) -> list[str]:
    """The archived segments replay reads from ``first`` on, in order: ``first``'s timeline only
    (a recovery that switches timeline fetches the rest itself)."""
    return sorted(n for n in names if is_segment(n) and n[:8] == first[:8] and n >= first)


def next_timeline_history(names: list[str], first: str) -> str:
    """The first timeline history file the archive lacks, from ``first``'s timeline on."""
    timelines = [int(n[:8], 16) for n in names if n.endswith(".history")]
    return f"{max([int(first[:8], 16), *timelines]) + 1:08X}.history"


def absent_histories(names: list[str], first: str) -> list[str]:
    """The history files recovery from ``first`` asks for that the archive lacks: the next
    timeline's, and ``first``'s own timeline's (asked for at promotion) when it is not there."""
    own = f"{first[:8]}.history"
    return sorted({next_timeline_history(names, first)} | ({own} - set(names)))


class WalFeed:
    """Fetches ``segments`` into ``spool`` in order, keeping at most ``window`` untaken there.

    A context manager: the feed runs from ``__enter__`` until ``__exit__`` stops it (after the
    cluster is promoted, or when the restore fails).
    """

    def __init__(
        self,
        repo: Repository,
        system: str,
        first: str,
        spool: Path,
        *,
        owner: str | None = None,
        window: int = WINDOW,
        workers: int = WORKERS,
        since: int = 0,
    ) -> None:
        self.repo, self.system, self.first, self.spool = repo, system, first, spool
        #: where replay starts (the base backup's start): a tablespace created before is not replayed
        self.since = since
        #: the last segment handed over, for reading the next one together with it
        self._previous: tuple[str, bytes] | None = None
        self.window, self.workers = window, workers
        account = pwd.getpwnam(owner) if owner else None
        self._ids = (account.pw_uid, account.pw_gid) if account else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: names fetched into the spool, in order
        self.fetched: list[str] = []
        #: names written into the spool and not yet seen taken (added as each is renamed into place)
        self._written: set[str] = set()
        #: the newest segment the recovery took from the spool
        self._newest_taken = ""
        self._lock = threading.Lock()
        #: the first problem met; the feed stops there and the recovery's own get reports it
        self.problem: str | None = None

    def __enter__(self) -> WalFeed:
        names = list(archived_names(self.repo, self.system))
        segments = segments_from(names, self.first)
        self.spool.mkdir(mode=0o700, exist_ok=True)
        if self._ids:
            os.chown(self.spool, *self._ids)
        os.chmod(self.spool, HIDDEN_MODE)
        for history in absent_histories(names, self.first):
            (self.spool / f"{history}{ABSENT}").touch()
        self._thread = threading.Thread(target=self._run, args=(segments,), name="bcpctl-walfeed", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.started()

    def started(self) -> None:
        """The server has started (its start-up walk of the data directory is over): the spool
        may be listed again (what the restore reads there, and its removal, need that)."""
        with contextlib.suppress(FileNotFoundError):
            os.chmod(self.spool, 0o700)

    def _waiting(self) -> int:
        """Files in the spool the recovery has not taken yet (counted by name: see the module).

        One that sorts before a file the recovery already took arrived too late (its ``wal get``
        fetched it from the archive meanwhile): replay moves forward and never asks for it, so
        it goes rather than holding a place in the window.
        """
        with self._lock:
            written = set(self._written)
        present = {name for name in written if os.path.lexists(self.spool / name)}
        taken = written - present
        if taken:
            self._newest_taken = max(self._newest_taken, *taken)
        for stale in [n for n in present if n < self._newest_taken]:
            (self.spool / stale).unlink(missing_ok=True)
            present.discard(stale)
        with self._lock:
            self._written -= written - present
        return len(present)

    def _run(self, queue: list[str]) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bcpctl-walfeed") as pool:
            pending: list[tuple[str, Future[bytes | None]]] = []
            while (queue or pending) and not self._stop.is_set():
                # in flight + waiting in the spool never exceeds the window
                while queue and len(pending) + self._waiting() < self.window:
                    name = queue.pop(0)
                    pending.append((name, pool.submit(self._fetch, name)))
                if not pending:
                    self._stop.wait(0.05)  # the spool is full: wait for replay to take a file
                    continue
                name, future = pending.pop(0)
                try:
                    data = future.result()
                    if data is not None and not self._hand_over(name, data):
                        return
                except (BcpError, OSError) as exc:
                    self.problem = f"{name}: {exc}"
                    self._stop.set()  # the recovery's own get meets it and says so
                    return
                self.fetched.append(name)

    def _fetch(self, name: str) -> bytes | None:
        if self._stop.is_set():
            return None
        return fetch(self.repo, self.system, name)[1]

    def _hand_over(self, name: str, data: bytes) -> bool:
        """Put ``name`` into the spool unless it creates a tablespace; in replay order.

        The file is written once, into a private directory of the spool, where ``pg_waldump``
        reads it; it is renamed into the spool once read (it was written for the check and then
        again for the spool)."""
        prior = self._previous
        previous = prior[1] if prior and prior[0] == previous_name(name, len(data) or DEFAULT_SEGMENT_SIZE) else None
        self._previous = (name, data)
        scan = Path(tempfile.mkdtemp(prefix=".scan-", dir=self.spool))
        try:
            with (scan / name).open("xb") as out:
                out.write(data)
                if self._ids:
                    os.fchown(out.fileno(), *self._ids)  # before it is visible: the server reads it
            found = creations_in(scan, name, len(data), previous, since=self.since)
            if found:
                self.problem = f"{name}: {refusal(self.system, found[0])}"
                withhold(self.spool, name, found[0])
                self._stop.set()
                return False
            os.replace(scan / name, self.spool / name)
            with self._lock:
                self._written.add(name)
        finally:
            shutil.rmtree(scan, ignore_errors=True)
        return True
