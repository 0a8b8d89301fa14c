"""``replicate --follow``: ship new objects offsite as they appear, start-up paid once.

A scheduled ``replicate`` bounds the offsite's recovery point by its schedule plus a run's
start-up and a listing of both sites. A postgres-wal system archives a segment every few
seconds under load, and its recovery point offsite is only as new as the newest segment
there (DESIGN "replication/": lag is the RPO a disaster would cost right now). The follower
keeps its backends, S3 client and control-database connection open and:

* runs a full :func:`replication.sync.replicate` at start, whenever the source's signed
  manifest changes (a backup committed and signed) and every ``reconcile`` seconds (what
  changed at the target behind its back, delayed deletions, Object Lock extensions);
* in between, and beside a full run that takes longer (a base backup's packs), every
  ``interval`` seconds, lists only the source's ``wal/`` and sends the segments the target
  lacks — hashed against their names and written under the same Object Lock retention as in
  a full run — then records each system's recovery-point lag.

WAL objects name nothing else and are content-addressed, so shipping them between full runs
commits no state that later phases complete: a segment offsite is whole (``save`` is atomic on
every backend) or absent, wherever the process is killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from backup.manifest import MANIFEST_KEY
from dc.clock import utcnow
from dc.errors import N_, AuthError, BcpError, ConfigError, Message, UsageError
from replication.lag import system_lags, wal_newest
from replication.plan import phase_of
from replication.records import SystemLag
from replication.sync import Listings, SyncOptions, replicate
from replication.transfer import Transfer
from replication.walobjects import is_wal_object
from storage.backend import Backend, ObjectInfo
from storage.errors import ObjectNotFound
from storage.metered import MeteredBackend
from storage.naming import content_name
from storage.objectlock import retain_until
from storage.ratelimit import RateLimitedBackend, TokenBucket

if TYPE_CHECKING:
    from replication.ledger import Ledger

WAL_PREFIX = "wal/"
#: seconds after which an unchanged lag is written again (its ``measured_at`` stays fresh)
LAG_REFRESH = 60.0
#: errors a retry cannot fix: the follower stops instead of repeating them every interval
_FATAL = (UsageError, AuthError, ConfigError)


@dataclass(frozen=True)
class FollowOptions:
    #: seconds between two looks at the source's WAL (the bound on the added lag)
    interval: float = 1.0
    #: seconds between full runs that list the target again
    reconcile: float = 300.0


@dataclass
class FollowRound:
    """One pass of the follower: what it sent and where each system's recovery point stands."""

    #: ``full`` (both sites listed, every phase) or ``wal`` (the source's WAL only)
    kind: str
    at: datetime
    objects_copied: int = 0
    wal_copied: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    ok: bool = True
    problem: str | None = None
    lag: list[SystemLag] = field(default_factory=list)
    #: objects under ``wal/`` at the source that are no WAL object of a repository, left there
    refused_wal: list[str] = field(default_factory=list)


@dataclass
class FollowSummary:
    source: str
    target: str
    rounds: int = 0
    full_rounds: int = 0
    objects_copied: int = 0
    bytes_sent: int = 0
    problems: int = 0
    seconds: float = 0.0


class Follower:
    """The follower's state between rounds: what the target holds, the last manifest seen, the lags."""

    def __init__(
        self, source: Backend, target: Backend, ledger: Ledger, options: SyncOptions, follow: FollowOptions
    ) -> None:
        self.source = source
        self.ledger = ledger
        self.follow = follow
        self.listings = Listings()
        self.lags: list[SystemLag] = []
        self._full_at: float | None = None  # monotonic time of the last successful full run
        self._manifest: tuple[int, float] | None = None
        self._recorded: tuple[list[SystemLag], float] = ([], 0.0)  # what the ledger holds, and when
        # one bucket for the follower's life, shared by its full runs and WAL rounds: one per round
        # would grant its burst every round, one per kind of round twice the rate beside each other
        self.target: Backend = (
            RateLimitedBackend(target, TokenBucket(options.limit_rate)) if options.limit_rate else target
        )
        self.options = replace(options, limit_rate=None)
        # WAL rounds run beside a full run: the listings and lags are shared between the two
        self._lock = threading.Lock()
        #: WAL sent while a full run is in flight (its target listing predates them)
        self._sent_during: dict[str, ObjectInfo] | None = None
        #: malformed WAL objects already reported (each is named once, not every interval)
        self._refused: set[str] = set()

    @property
    def accepted(self) -> bool:
        """A full run succeeded since the start or the last failure."""
        return self._full_at is not None

    def restart(self) -> None:
        """After a failure, go back to a full run before shipping anything else."""
        self._full_at = None

    def due_full(self, now: float) -> bool:
        """A full run is due: none succeeded yet, the reconcile period passed, or the manifest changed."""
        if self._full_at is None or now - self._full_at >= self.follow.reconcile:
            return True
        return self._manifest_seen() != self._manifest

    def _manifest_seen(self) -> tuple[int, float] | None:
        try:
            info = self.source.stat(MANIFEST_KEY)
        except ObjectNotFound:
            return None
        return info.size, info.mtime

    def full(self, cancel: threading.Event, *, with_wal: bool = True) -> FollowRound:
        """A full run; ``with_wal=False`` when WAL rounds go on beside it and ship the WAL."""
        started, now = time.monotonic(), utcnow()
        manifest = self._manifest_seen()  # before the run: a signature during it triggers another
        listings = Listings()
        with self._lock:
            self._sent_during = {}
        try:
            result = replicate(
                self.source, self.target, self.ledger, self.options, now=now, listings=listings, cancel=cancel,
                skip=frozenset() if with_wal else frozenset({"wal"}),
            )  # fmt: skip
        finally:
            with self._lock:
                listings.target.update(self._sent_during or {})
                self._sent_during = None
        # stopped by SIGTERM: a clean shutdown, not a problem (the next start resumes)
        problem = None if result.cancelled and not result.errors else result.problem()
        # refused (planted) snapshots and conflicting fixed-name objects are reported every full
        # run, but the run itself completed: only a run cut short must be run again at once
        with self._lock:
            if not result.errors and not result.cancelled:
                self._full_at, self._manifest = started, manifest
            self.listings, self.lags = listings, result.lag
            self._recorded = (result.lag, started)  # replicate() recorded them
        return FollowRound(
            "full",
            now,
            objects_copied=result.objects_copied,
            wal_copied=result.phases["wal"].objects,
            bytes_sent=result.bytes_sent,
            seconds=round(time.monotonic() - started, 3),
            ok=problem is None,
            problem=problem,
            lag=result.lag,
        )

    def wal(self, cancel: threading.Event) -> FollowRound:
        """Send the WAL objects the source has and the target (as last listed, plus what was sent) lacks."""
        started, now = time.monotonic(), utcnow()
        wal = {info.key: info for info in self.source.list(WAL_PREFIX) if phase_of(info.key) == "wal"}
        with self._lock:
            held = set(self.listings.target)
        # a name that is not a content hash stays for the full run, which reports it; an object
        # that is no WAL object of a repository is never shipped (replication/walobjects.py)
        lacking = [info for key, info in wal.items() if key not in held and content_name(key)]
        missing = [info for info in lacking if is_wal_object(info)]
        round_ = FollowRound("wal", now)
        refused = sorted(info.key for info in lacking if not is_wal_object(info))
        if new_refused := [key for key in refused if key not in self._refused]:
            self._refused.update(new_refused)
            more = f" (and {len(new_refused) - 1} more)" if len(new_refused) > 1 else ""
            round_.ok = False
            round_.problem = Message(
                N_("{new_refused}: not a WAL object of a repository, left at the source{more}"),
                new_refused=new_refused[0],
                more=more,
            )
        round_.refused_wal = refused
        if missing:
            metered = MeteredBackend(self.target)
            lock = retain_until(now, self.options.object_lock_days) if self.options.object_lock_days else None
            transfer = Transfer(
                self.source, metered, jobs=self.options.jobs, verify=self.options.verify, retain_until=lock,
                stop_on_error=False, cancel=cancel,
            )  # fmt: skip
            outcome = transfer.copy(missing)
            sent = {key: wal[key] for key in outcome.copied}
            with self._lock:
                self.listings.target.update(sent)
                if self._sent_during is not None:
                    self._sent_during.update(sent)
            self.ledger.record_locks(self.target.url, outcome.locked)
            round_.objects_copied = round_.wal_copied = len(outcome.copied)
            round_.bytes_sent = metered.counters().bytes_sent
            if outcome.errors:
                key, message = next(iter(sorted(outcome.errors.items())))
                more = f" (and {len(outcome.errors) - 1} more)" if len(outcome.errors) > 1 else ""
                sent_problem = f"{key}: {message}{more}; the next round retries"
                round_.ok, round_.problem = False, "; ".join(filter(None, [round_.problem, sent_problem]))
        with self._lock:
            src, tgt = self.listings.source, self.listings.target
            src.update(wal)
            self.lags = refreshed_lags(self.lags, wal_newest(src, src), wal_newest(src, tgt))
            lags, (last, when) = self.lags, self._recorded
            due = lags != last or started - when >= LAG_REFRESH  # an idle round writes nothing
            if due:
                self._recorded = (lags, started)
        if due:
            self.ledger.record_lag(self.source.url, self.target.url, lags, now)
        round_.lag = lags
        round_.seconds = round(time.monotonic() - started, 3)
        return round_


def refreshed_lags(
    lags: list[SystemLag], src_wal: dict[str, datetime], tgt_wal: dict[str, datetime]
) -> list[SystemLag]:
    """The last full run's snapshot figures with the recovery-point lag of the WAL as it is now."""
    src_newest = {lag.system: lag.source_newest for lag in lags if lag.source_newest is not None}
    tgt_newest = {lag.system: lag.target_newest for lag in lags if lag.target_newest is not None}
    return system_lags(src_newest, tgt_newest, src_wal, tgt_wal)


class _FullRun(threading.Thread):
    """A full run in the background while the follower's WAL rounds go on."""

    def __init__(self, follower: Follower, stop: threading.Event) -> None:
        super().__init__(name="bcp-follow-full", daemon=True)
        self.follower, self.stop = follower, stop
        self.round: FollowRound | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.round = self.follower.full(self.stop, with_wal=False)
        except BaseException as exc:  # handed to the main thread, which raises or reports it
            self.error = exc

    def outcome(self) -> FollowRound:
        self.join()
        if isinstance(self.error, BcpError) and not isinstance(self.error, _FATAL):
            self.follower.restart()
            return FollowRound("full", utcnow(), ok=False, problem=self.error.message)
        if self.error is not None:
            raise self.error
        assert self.round is not None
        return self.round


def follow(
    source: Backend,
    target: Backend,
    ledger: Ledger,
    options: SyncOptions,
    follow_options: FollowOptions,
    *,
    stop: threading.Event,
    report: Callable[[FollowRound], None],
) -> FollowSummary:
    """Replicate until ``stop`` is set, reporting every round that sent something or failed.

    The first full run (and one after a failure) runs alone; later ones (a new signed
    manifest, the reconcile period) run in the background while WAL rounds go on, so a base
    backup's packs never hold the recovery point back. A problem in a round (the target
    unreachable, a refused manifest, a damaged object) is reported and retried at the next
    interval; after a failed full run the next round is a full run again, so WAL is only
    shipped past a state a full run accepted. An error no retry can fix (bad credentials, a
    missing bucket) stops the follower at once.
    """
    follower = Follower(source, target, ledger, options, follow_options)
    summary = FollowSummary(source.url, target.url)
    started = time.monotonic()
    background: _FullRun | None = None
    while True:
        begun = time.monotonic()
        rounds: list[FollowRound] = []
        if background is not None and (not background.is_alive() or stop.is_set()):
            rounds.append(background.outcome())
            background = None
        if stop.is_set():
            _count(summary, rounds, report)
            break
        try:
            if background is None and follower.due_full(begun):
                if follower.accepted:
                    background = _FullRun(follower, stop)
                else:
                    rounds.append(follower.full(stop))
            if follower.accepted and not (rounds and rounds[-1].kind == "full"):
                rounds.append(follower.wal(stop))
        except _FATAL:
            raise
        except BcpError as exc:
            rounds.append(FollowRound("wal" if follower.accepted else "full", utcnow(), ok=False, problem=exc.message))
            follower.restart()
        _count(summary, rounds, report)
        stop.wait(max(0.0, follow_options.interval - (time.monotonic() - begun)))
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _count(summary: FollowSummary, rounds: list[FollowRound], report: Callable[[FollowRound], None]) -> None:
    for round_ in rounds:
        summary.rounds += 1
        summary.full_rounds += round_.kind == "full"
        summary.objects_copied += round_.objects_copied
        summary.bytes_sent += round_.bytes_sent
        summary.problems += not round_.ok
        if round_.kind == "full" or round_.objects_copied or not round_.ok:
            report(round_)
