"""Copying objects between backends in parallel, checking each one by its name on arrival.

The sync never trusts what it reads: a content-addressed object must hash to its own name
(a fixed-name one to the hash its signed manifest gives) before it is written to the target,
so a damaged source object is reported instead of replicated. With ``verify`` every written
object is read back from the target and hashed again.

Checking and sending are two stages: hashing threads read and check objects ahead of the
upload threads, which send each one as soon as it is checked. Were each upload thread to
hash its object and then send it, equal-sized packs would keep the threads in step — all
hashing while the target idles, then all sending while the hashing cores idle — and on a
host that runs the target too (a gateway beside the primary) both would wait on each other.
hashlib releases the GIL, so there is a hashing thread per core (at most one per upload
thread): on a two-core host a single one was measured to be what the uploads waited for.

Every object is read into memory and exactly those bytes are sent; at most ``jobs + 1`` are
held (read and waiting, or in flight) at a time. Objects are never mapped: a mapped file cut
short, or a disk error under a mapped page, kills the whole process with SIGBUS, where a read
fails that one object. A target that checks names itself (S3,
:class:`~storage.capabilities.NameChecking`: the signed SHA-256 of each upload must be the
name, and the server holds the bytes it receives to it) gets content-addressed objects
unhashed: its one pass is the check, and a mismatch is reported as damage at the source like
this side's own.

The first failure stops the remaining transfers: when an endpoint is down, every other
object would only wait out its own retry budget. A damaged, vanished or planted source object
is the exception: it fails alone and the others still copy (one damaged object never locks
out the rest); when the signed manifest names it, the sync lands the target on a state that
does not (replication/holdback.py).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from dc.errors import N_, message_of
from dc.failpoint import failpoint
from storage.backend import Backend, ObjectInfo
from storage.capabilities import NameChecking, as_capability
from storage.errors import NameMismatch, NotARegularFile, ObjectNotFound, StorageError, Unreachable
from storage.naming import content_name, sha256_of


@dataclass
class TransferOutcome:
    copied: list[str] = field(default_factory=list)
    bytes: int = 0
    #: ``{key: problem}`` for objects that were not copied
    errors: dict[str, str] = field(default_factory=dict)
    #: those of ``errors`` that failed alone: damaged, vanished or planted at the source
    damaged: set[str] = field(default_factory=set)
    #: written with this retain-until (Object Lock), for the lock ledger
    locked: dict[str, datetime] = field(default_factory=dict)


class Transfer:
    """One run's copier; counts objects across phases for the ``replicate.after-object-N`` failpoints."""

    def __init__(
        self,
        source: Backend,
        target: Backend,
        *,
        jobs: int = 4,
        verify: bool = False,
        retain_until: datetime | None = None,
        expected_hashes: dict[str, str] | None = None,
        expected_sizes: dict[str, int | None] | None = None,
        progress: Callable[[int], None] | None = None,
        stop_on_error: bool = True,
        cancel: threading.Event | None = None,
        hashers: int | None = None,
        check_body: Callable[[str, bytes], bool] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.jobs = max(1, jobs)
        self.hashers = max(1, min(self.jobs, os.cpu_count() or 1)) if hashers is None else max(1, hashers)
        self.verify = verify
        self.retain_until = retain_until
        self.expected_hashes = expected_hashes or {}
        self.expected_sizes = expected_sizes or {}
        #: whether an object's bytes are what may be sent under its key, beyond its name and hash
        #: (a signed link: its signature and position, checked again as it is read to be sent)
        self.check_body = check_body
        self.progress = progress
        self.stop_on_error = stop_on_error
        #: set from outside (SIGTERM): objects in flight finish, the rest are not started
        self.cancel = cancel
        self._lock = threading.Lock()
        self._count = 0
        #: the target hashes content-addressed uploads itself and stores them only under their name (S3)
        self._names = as_capability(target, NameChecking)

    def expected_hash(self, key: str) -> str | None:
        return content_name(key) or self.expected_hashes.get(key)

    def copy(self, infos: list[ObjectInfo]) -> TransferOutcome:
        """Copy ``infos`` (largest first, so the tail of a phase is not one big object alone)."""
        outcome = TransferOutcome()
        stop = threading.Event()
        ordered = sorted(infos, key=lambda i: -i.size)
        if not ordered:
            return outcome
        # A slot per object held, taken here in order: the checks run in the order of the sends
        # that wait for them, so neither stage can wait on an object the other has not reached.
        # Each object held is this process's memory: one ahead of the uploads is enough.
        slots = threading.Semaphore(self.jobs + 1)
        sends: list[Future[None]] = []
        with (
            ThreadPoolExecutor(self.hashers, thread_name_prefix="bcp-check") as checkers,
            ThreadPoolExecutor(self.jobs, thread_name_prefix="bcp-replicate") as senders,
        ):
            try:
                for info in ordered:
                    slots.acquire()
                    if self._stopped(stop):
                        slots.release()
                        break
                    checked = checkers.submit(self._check, info, stop)
                    sends.append(senders.submit(self._send, info, checked, outcome, stop, slots))
                for future in sends:
                    future.result()
            except BaseException:
                stop.set()
                raise
        return outcome

    def _stopped(self, stop: threading.Event) -> bool:
        return stop.is_set() or (self.cancel is not None and self.cancel.is_set())

    # -- reading ----------------------------------------------------------------------------

    def _checked_by_target(self, key: str) -> bool:
        return self._names is not None and self._names.checks_name(key)

    def _problem(self, key: str, body: bytes, sha256: bytes | None) -> StorageError | None:
        """What is wrong with ``body`` as ``key`` (``sha256``: ``None`` when the target checks the hash)."""
        expected = self.expected_hash(key)
        size = self.expected_sizes.get(key)
        if sha256 is not None and expected is not None and sha256.hex() != expected:
            return _damaged(key)
        if self.check_body is not None and not self.check_body(key, body):
            return _damaged(key)
        if size is not None and len(body) != size:
            return SourceDamage(
                N_("{key} at the source has {n_body} bytes, the signed manifest says {size}"),
                key=key,
                n_body=len(body),
                size=size,
            )
        return None

    def damaged_among(self, infos: list[ObjectInfo]) -> dict[str, str]:
        """Read and check ``infos`` at the source without writing anything: ``{key: problem}`` for
        those damaged, vanished or planted there (each hashed here, whatever the target checks)."""

        def one(info: ObjectInfo) -> tuple[str, str] | None:
            try:
                body = self.source.load(info.key)
            except (NotARegularFile, ObjectNotFound) as exc:
                return info.key, message_of(exc)
            except Unreachable:
                raise
            except StorageError as exc:
                return info.key, message_of(exc)
            problem = self._problem(info.key, body, sha256_of(body))
            return (info.key, message_of(problem)) if problem is not None else None

        with ThreadPoolExecutor(self.jobs, thread_name_prefix="bcp-precheck") as pool:
            return dict(found for found in pool.map(one, infos) if found is not None)

    # -- one object -------------------------------------------------------------------------

    def _check(self, info: ObjectInfo, stop: threading.Event) -> tuple[bytes, bytes | None] | None:
        """Read one object and check it against its name (or signed hash) and signed size, with its
        SHA-256 (``None`` where the target checks it); ``None`` when the transfer stopped first."""
        if self._stopped(stop):
            return None
        try:
            body = self.source.load(info.key)
        except (ObjectNotFound, NotARegularFile, Unreachable):
            raise
        except StorageError as exc:  # this object's bytes (a disk error, cut short): it alone fails
            raise SourceDamage(
                N_("cannot read {key} at the source: {reason}"), key=info.key, reason=message_of(exc)
            ) from None
        sha256 = None if self._checked_by_target(info.key) else sha256_of(body)
        if problem := self._problem(info.key, body, sha256):
            raise problem
        return body, sha256

    def _send(
        self,
        info: ObjectInfo,
        checked: Future[tuple[bytes, bytes | None] | None],
        outcome: TransferOutcome,
        stop: threading.Event,
        slots: threading.Semaphore,
    ) -> None:
        """Upload one object once it is checked; its slot is free again when this returns."""
        key = info.key
        try:
            found = checked.result()
            if found is None:
                return
            body, sha256 = found
            if self._stopped(stop):
                return
            size = len(body)
            self.target.save(key, body, retain_until=self.retain_until)
            if self.verify and hashlib.sha256(self.target.load(key)).hexdigest() != (
                sha256.hex() if sha256 is not None else self.expected_hash(key)
            ):
                raise StorageError(N_("{key} reads back from the target with other bytes than were sent"), key=key)
        except NameMismatch:
            self._fail(key, _damaged(key), outcome, stop)
            return
        except StorageError as exc:
            self._fail(key, exc, outcome, stop)
            return
        except BaseException:
            stop.set()  # bad credentials and the like: no point starting the other transfers
            raise
        finally:
            slots.release()
        with self._lock:
            outcome.copied.append(key)
            outcome.bytes += size
            if self.retain_until is not None:
                outcome.locked[key] = self.retain_until
            self._count += 1
            count = self._count
        if self.progress is not None:
            self.progress(size)
        failpoint(f"replicate.after-object-{count}")

    def _fail(self, key: str, exc: StorageError, outcome: TransferOutcome, stop: threading.Event) -> None:
        alone = isinstance(exc, SourceDamage | NotARegularFile | ObjectNotFound)
        with self._lock:
            outcome.errors[key] = message_of(exc)
            if alone:
                outcome.damaged.add(key)
        # A failing endpoint fails every object (each would wait out its retry budget); one damaged,
        # vanished or planted source object fails alone, and the others still copy.
        if self.stop_on_error and not alone:
            stop.set()


class SourceDamage(StorageError):
    """A source object that does not match its name, signed hash or signed size: it alone is not copied."""


def _damaged(key: str) -> StorageError:
    return SourceDamage(N_("{key} at the source does not match its name or manifest hash (damaged there)"), key=key)
