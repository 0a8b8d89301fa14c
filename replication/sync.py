"""Keyless replication of a repository: ciphertext only, in commit order, resumable.

restic ``copy`` and borg ``transfer`` decrypt and re-encrypt (both need the key), kopia
``sync-to`` needs the password and rclone copies blindly without knowing a complete state
from a half-written one. This sync needs no key at all:

1. it reads the source's plain ``config`` (repository id) and verifies the signed manifest
   against the pinned public key, refusing a forged, rolled-back or truncated state;
2. it lists both sides and copies what the target lacks in commit order — key slots and
   config, packs, indexes, snapshots (only those the manifest signs), then the manifest —
   hashing every object against its name before writing it;
3. whatever it finds at the target but no longer at the source is deleted only after the
   configured delay, never while referenced or under an Object Lock retention;
4. it extends Object Lock retention for packs the current state still references and
   records per-system lag in the control database.

An interrupted run leaves a consistent target (whole phases or whole objects, never half),
and the next run lists again and sends only what is still missing.

A signed manifest naming objects that neither site holds intact (missing at the source, of
another size than it signs, or found damaged when the packs phase hashes them or when the
index files and snapshots are read before their phases) is not
written: the run still copies every intact object it may and lands the target on the newest
signed state it holds whole (:mod:`replication.holdback`), then fails with the refusal as its
problem (exit 1), so the next run after the primary is mended ships the rest and the manifest.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from backup.errors import NotARepository
from backup.manifest import MANIFEST_KEY, Manifest
from backup.manifestchain import link_reader
from backup.repository import CONFIG_KEY, RepoConfig
from dc.clock import utcnow
from dc.errors import N_, BcpError, Message, UsageError
from dc.failpoint import failpoint
from replication.errors import TargetMismatch
from replication.holdback import NAMED_ONLY, damaged_named, hold_back, land_short, signed_links
from replication.lag import lags_between
from replication.plan import (
    DEFAULT_DELETE_DELAY,
    PHASES,
    CopyPlan,
    decide_deletions,
    missing_referenced,
    phase_of,
    plan_copy,
)
from replication.records import Pin, SystemLag
from replication.transfer import Transfer, TransferOutcome
from replication.trust import accept_manifest, links_to_put_back, load_optional
from storage.backend import Backend, ObjectInfo
from storage.capabilities import object_locking
from storage.errors import AccessDenied
from storage.metered import MeteredBackend
from storage.objectlock import extend_locks, require_lock_support, retain_until
from storage.ratelimit import RateLimitedBackend, TokenBucket

if TYPE_CHECKING:  # SQLAlchemy: loaded by whoever opens the ledger (replication.jobs.open_ledger)
    from replication.ledger import Ledger


@dataclass(frozen=True)
class SyncOptions:
    jobs: int = 4
    #: read every written object back from the target and hash it again
    verify: bool = False
    #: bytes per second across all transfers to the target (``None``: unlimited)
    limit_rate: float | None = None
    object_lock_days: int = 0
    delete_delay: timedelta = DEFAULT_DELETE_DELAY
    #: the manifest public key from the site configuration (else the one pinned in the control DB)
    pinned_key: str | None = None
    #: unsigned snapshots younger than this are a backup between commit and signature, not forgeries
    unsigned_grace: timedelta = timedelta(minutes=10)


@dataclass
class SyncProgress:
    start: Callable[[int], None]
    advance: Callable[[int], None]


@dataclass
class PhaseFigures:
    objects: int = 0
    bytes: int = 0


@dataclass
class Listings:
    """Both sides as the run saw them, the target's with what the run copied (``replicate --follow``
    then watches the source alone and lists the target again only at its next full run)."""

    source: dict[str, ObjectInfo] = field(default_factory=dict)
    target: dict[str, ObjectInfo] = field(default_factory=dict)


@dataclass
class SyncResult:
    source: str
    target: str
    repository: str
    ok: bool = True
    signed: bool = False
    manifest_sequence: int | None = None
    pinned_now: bool = False
    manifest_written: bool = False
    phases: dict[str, PhaseFigures] = field(default_factory=lambda: {p: PhaseFigures() for p in PHASES})
    objects_copied: int = 0
    objects_present: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    mb_per_s: float = 0.0
    unsigned_pending: list[str] = field(default_factory=list)
    refused_snapshots: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    pending_deletions: int = 0
    retained_by_lock: list[str] = field(default_factory=list)
    locks_extended: int = 0
    lag: list[SystemLag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: stopped (SIGTERM to ``replicate --follow``) before the manifest was written
    cancelled: bool = False
    #: ``{key: problem}``: objects the source's signed manifest names that neither site holds
    #: intact; the manifest was not written and the run failed (:mod:`replication.holdback`)
    not_intact: dict[str, str] = field(default_factory=dict)
    #: index files, snapshots and links left at the source because the target's signed state
    #: does not name them yet (and the objects of ``not_intact`` the source has)
    held_back: int = 0
    #: the sequence of the signed manifest the target holds when the run ends (``None``: none)
    target_sequence: int | None = None

    def problem(self) -> str | None:
        """One line for the operator when the run did not fully succeed."""
        if self.not_intact:
            key, problem = next(iter(sorted(self.not_intact.items())))
            state = (
                Message(N_("manifest {manifest_sequence}"), manifest_sequence=self.target_sequence)
                if self.target_sequence is not None
                else Message(N_("no signed manifest"))
            )
            return Message(
                N_(
                    "refusing manifest {sequence} of {url}: it names {n_missing} object(s) that neither site "
                    "holds intact (truncated?), e.g. {key}: {problem}; {copied} intact object(s) copied and "
                    "{held} held back, the target holds {state}"
                ),
                sequence=self.manifest_sequence,
                url=self.source,
                n_missing=len(self.not_intact),
                key=key,
                problem=problem,
                copied=self.objects_copied,
                held=self.held_back,
                state=state,
            )
        if self.errors:
            message = next(iter(self.errors.values()))
            more = Message(N_(" (and {count} more)"), count=len(self.errors) - 1) if len(self.errors) > 1 else ""
            return Message(
                N_("replication to {target} incomplete: {message_}{more}; the next run resumes"),
                target=self.target,
                message_=message,
                more=more,
            )
        if self.refused_snapshots:
            return Message(
                N_(
                    "refused {count} snapshot(s) at {source} that the signed manifest "
                    "does not cover (forged or planted): {names}"
                ),
                count=len(self.refused_snapshots),
                source=self.source,
                names=", ".join(s[:12] for s in self.refused_snapshots[:3]),
            )
        if self.conflicts:
            return Message(
                N_("{count} fixed-name object(s) differ between the sites: {names}"),
                count=len(self.conflicts),
                names=", ".join(self.conflicts),
            )
        if self.cancelled:
            return Message(
                N_("replication to {target} stopped before it finished; the next run resumes"), target=self.target
            )
        return None


def _list(backend: Backend) -> dict[str, ObjectInfo]:
    return {info.key: info for info in backend.list("")}


def read_source_config(source: Backend) -> tuple[RepoConfig, bytes]:
    raw = load_optional(source, CONFIG_KEY)
    if raw is None:
        raise NotARepository(N_("no bcpctl repository at {url}"), url=source.url)
    return RepoConfig.parse(raw, f"{source.url}/{CONFIG_KEY}"), raw


def replicate(
    source: Backend,
    target: Backend,
    ledger: Ledger,
    options: SyncOptions | None = None,
    *,
    now: datetime | None = None,
    progress: SyncProgress | None = None,
    listings: Listings | None = None,
    cancel: threading.Event | None = None,
    skip: frozenset[str] = frozenset(),
) -> SyncResult:
    """Bring ``target`` up to the source's signed state; see the module docstring.

    ``listings``, when given, receives both listings (the target's with the objects copied).
    ``cancel`` set while it runs: the objects in flight finish, nothing later is started and
    the manifest is not written (the target stays the consistent state of the phases done).
    ``skip``: phases another copier ships (``replicate --follow`` sends WAL beside a full run).
    """
    if _same_place(source.url, target.url):
        raise UsageError(
            N_("{target} is the same repository as {source}: an offsite copy must be elsewhere"),
            target=target.url,
            source=source.url,
        )
    options = options or SyncOptions()
    now = now or utcnow()
    started = time.monotonic()
    result = SyncResult(source.url, target.url, "")
    try:
        _replicate(source, target, ledger, options, now, progress, result, listings or Listings(), cancel, skip)
    except BcpError as exc:
        _record(ledger, result, now, started, exc.message)
        raise
    _record(ledger, result, now, started, result.problem())
    return result


def _same_place(source: str, target: str) -> bool:
    """Whether two repository URLs are one place (a local path however it is spelt, through links
    too): replicating onto itself copies nothing and records every recovery point as current."""
    source, target = source.rstrip("/"), target.rstrip("/")
    if source.startswith("file://") and target.startswith("file://"):
        return os.path.realpath(source.removeprefix("file://")) == os.path.realpath(target.removeprefix("file://"))
    return source == target


def _record(ledger: Ledger, result: SyncResult, now: datetime, started: float, error: str | None) -> None:
    result.seconds = round(time.monotonic() - started, 3)
    result.mb_per_s = round(result.bytes_sent / 1e6 / result.seconds, 2) if result.seconds else 0.0
    result.ok = error is None
    ledger.record_run(
        source=result.source,
        target=result.target,
        started_at=now,
        finished_at=utcnow(),
        ok=result.ok,
        objects_copied=result.objects_copied,
        bytes_sent=result.bytes_sent,
        seconds=result.seconds,
        manifest_sequence=result.manifest_sequence,
        error=error,
    )


def _replicate(
    source: Backend,
    target: Backend,
    ledger: Ledger,
    options: SyncOptions,
    now: datetime,
    progress: SyncProgress | None,
    result: SyncResult,
    listings: Listings,
    cancel: threading.Event | None,
    skip: frozenset[str],
) -> None:
    with ThreadPoolExecutor(4, thread_name_prefix="bcp-open") as pool:
        # Every read the decisions below need, at once: each is a round trip to a site, and
        # nothing is written before all of them are in and the manifest is accepted.
        existing_future = pool.submit(load_optional, target, CONFIG_KEY)
        target_manifest_future = pool.submit(load_optional, target, MANIFEST_KEY)
        src_future, tgt_future = pool.submit(_list, source), pool.submit(_list, target)
        config, config_raw = read_source_config(source)
        result.repository = config.id
        existing = existing_future.result()
        if existing is not None and existing != config_raw:
            theirs = RepoConfig.parse(existing, f"{target.url}/{CONFIG_KEY}").id
            raise TargetMismatch(
                N_("{url} holds repository {theirs}, not {id} from {url2}; nothing was written"),
                url=target.url,
                theirs=theirs[:8],
                id=config.id[:8],
                url2=source.url,
            )
        require_lock_support(target, options.object_lock_days)
        pin = ledger.pin(config.id)
        pinned_key = options.pinned_key or (pin.public_key if pin else None)
        manifest, manifest_raw, current = accept_manifest(
            source, target_manifest_future.result(), config.id, config_raw, pin, pinned_key, link_reader(target)
        )
        result.signed = manifest is not None
        result.manifest_sequence = manifest.sequence if manifest else None
        if manifest is None:
            result.warnings.append(
                Message(N_("the source has no signed manifest: the snapshot set cannot be verified"))
            )
        src, tgt = src_future.result(), tgt_future.result()
    # the state the target is left at: the source's manifest, unless it names objects neither
    # site holds intact (truncated at the primary, or damaged to another size)
    landing, landing_raw = manifest, manifest_raw
    if manifest is not None and manifest_raw is not None:
        result.not_intact = missing_referenced(manifest, src, tgt)
        if result.not_intact:
            landing, landing_raw = land_short(
                source, target, manifest, manifest_raw, current, pin, src, tgt, result.not_intact
            )

    plan = plan_copy(src, tgt, manifest)
    _sort_unsigned(plan, now, options.unsigned_grace, result)
    held = {key for key in tgt if key in src}
    put_back = links_to_put_back(source, target, manifest, current, held) if manifest is not None else {}
    if result.not_intact:
        named = set(landing.referenced()) if landing is not None else set()
        put_back = {key: digest for key, digest in put_back.items() if key in named}
        result.held_back = len(hold_back(plan, landing, result.not_intact))
    for key in put_back:
        if key in plan.conflicts:
            plan.conflicts.remove(key)
        else:
            plan.present -= 1
        plan.phases["snapshots"].append(src[key])
    result.objects_present = plan.present
    result.conflicts = plan.conflicts

    metered = MeteredBackend(target)
    target_io: Backend = RateLimitedBackend(metered, TokenBucket(options.limit_rate)) if options.limit_rate else metered
    source_io = MeteredBackend(source)
    lock_until = retain_until(now, options.object_lock_days) if options.object_lock_days else None
    expected = {CONFIG_KEY: manifest.config_sha256, **manifest.keys, **put_back} if manifest else {}
    transfer = Transfer(
        source_io,
        target_io,
        jobs=options.jobs,
        verify=options.verify,
        retain_until=lock_until,
        expected_hashes=expected,
        expected_sizes=dict(manifest.packs) if manifest else None,
        progress=progress.advance if progress else None,
        cancel=cancel,
        check_body=signed_links(landing) if landing is not None else None,
    )
    if progress:
        progress.start(plan.bytes)
    locked: dict[str, datetime] = {}
    copied: list[str] = []
    #: damaged packs no signed state names: errors of the run that do not stop it
    strays: set[str] = set()
    try:
        for phase in PHASES:
            if phase in skip:
                continue
            outcome = transfer.copy(plan.phases[phase])
            _merge(result, phase, outcome)
            copied += outcome.copied
            locked.update(outcome.locked)
            damaged: dict[str, str] = {}
            if phase == "packs" and manifest is not None and manifest_raw is not None and outcome.errors:
                # packs the manifest names that turned out damaged at the source (their size was
                # right): as if the listing had shown them short, so the rest still commits
                damaged, unsigned = damaged_named(outcome, manifest)
                for key in damaged:
                    del result.errors[key]
                # A damaged pack no signed state names (planted, or a backup's before its signature)
                # stays an error of the run, but stops it no more than one the manifest names: no
                # index file the landing names can name it, and the others wait with it.
                strays.update(unsigned)
                result.held_back += len(hold_back(plan, landing, dict.fromkeys(unsigned, "")))
            stopped = set(result.errors) - strays
            if phase == "packs" and manifest is not None and manifest_raw is not None and not stopped:
                # Index files and snapshots have no signed size: one damaged at the source is found
                # only by reading it, and found while its phase copies, the others of the phase
                # would be offsite already (snapshots the landing does not sign). So both phases
                # are read and checked first, and what the manifest names among the damaged is
                # held back like a damaged pack.
                signs = manifest.referenced()
                later = [info for name in NAMED_ONLY for info in plan.phases[name] if info.key in signs]
                damaged.update(transfer.damaged_among(later))
            if damaged and manifest is not None and manifest_raw is not None:
                result.not_intact.update(damaged)
                intact = {key: info for key, info in src.items() if key not in result.not_intact}
                landing, landing_raw = land_short(
                    source, target, manifest, manifest_raw, current, pin, intact, tgt, result.not_intact
                )
                result.held_back += len(hold_back(plan, landing, result.not_intact))
            if set(result.errors) - strays:
                return  # later phases would commit a state whose parts are missing
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                return
        failpoint("replicate.before-manifest")
        if landing is not None and landing_raw is not None:
            if current is None or current.digest != landing.digest:
                target_io.save(MANIFEST_KEY, landing_raw, retain_until=lock_until)
                if lock_until is not None:
                    locked[MANIFEST_KEY] = lock_until
                result.manifest_written = True
            result.pinned_now = pin is None or pin.public_key != landing.public_key
            ledger.set_pin(Pin(config.id, landing.public_key, landing.sequence, landing.digest), now)
            current = landing
    finally:
        result.target_sequence = current.sequence if current is not None else None
        result.bytes_sent = metered.counters().bytes_sent
        result.bytes_received = source_io.counters().bytes_received
        ledger.record_locks(target.url, locked)
        listings.source, listings.target = src, {**tgt, **{k: src[k] for k in copied}}
        result.lag = lags_between(manifest, current, src, listings.target)
        ledger.record_lag(source.url, target.url, result.lag, now)

    known_locks = ledger.locks(target.url)
    # a run landing short with no signed state at the target has nothing it may call in use
    if options.object_lock_days and (current is not None or not result.not_intact):
        in_use = set(current.referenced()) if current else {k for k in src if phase_of(k)}
        in_use |= {CONFIG_KEY, *(k for k in src if k.startswith("keys/"))}
        if current is not None:
            in_use |= {MANIFEST_KEY, *current.keys}
        extension = extend_locks(target, sorted(in_use), known_locks, now, options.object_lock_days, jobs=options.jobs)
        result.locks_extended = len(extension.extended)
        ledger.record_locks(target.url, extension.until)
        known_locks.update(extension.until)
        for key, message in extension.errors.items():
            result.warnings.append(Message(N_("could not extend the lock of {key}: {reason}"), key=key, reason=message))
    _delete_due(target, ledger, plan, current, known_locks, now, options, result)


def _merge(result: SyncResult, phase: str, outcome: TransferOutcome) -> None:
    figures = result.phases[phase]
    figures.objects += len(outcome.copied)
    figures.bytes += outcome.bytes
    result.objects_copied += len(outcome.copied)
    result.errors.update(outcome.errors)


def _sort_unsigned(plan: CopyPlan, now: datetime, grace: timedelta, result: SyncResult) -> None:
    for info in plan.unsigned:
        snapshot_id = info.key.removeprefix("snapshots/")
        if now.timestamp() - info.mtime < grace.total_seconds():
            result.unsigned_pending.append(snapshot_id)
        else:
            result.refused_snapshots.append(snapshot_id)


def _delete_due(
    target: Backend,
    ledger: Ledger,
    plan: CopyPlan,
    current: Manifest | None,
    known_locks: dict[str, datetime],
    now: datetime,
    options: SyncOptions,
    result: SyncResult,
) -> None:
    if result.errors or result.not_intact:
        return  # the source's listing is not a state the target accepted: nothing goes on its word
    # the key slots the accepted state signs: without them nothing offsite can be decrypted, and
    # a slot gone from the primary is no reason to lose the offsite's copy
    protected = {*current.referenced(), *current.keys} if current else set()
    decision = decide_deletions(
        plan.extra_at_target, ledger.pending_deletes(target.url), protected, known_locks, now, options.delete_delay
    )
    ledger.mark_missing(target.url, decision.newly_missing, now)
    ledger.clear_missing(target.url, decision.cleared)
    retained = list(decision.retained)
    deleted = []
    locking = object_locking(target)
    for key in decision.due:
        if locking is not None and key not in known_locks:
            until = locking.lock_until(key)
            if until is not None and until > now:
                retained.append(key)
                continue
        try:
            target.remove(key)
        except AccessDenied:
            retained.append(key)  # the storage's lock wins over our ledger
            continue
        deleted.append(key)
    ledger.clear_missing(target.url, deleted)
    ledger.forget_locks(target.url, deleted)
    result.deleted = deleted
    result.retained_by_lock = sorted(retained)
    result.pending_deletions = len(plan.extra_at_target) - len(deleted)
