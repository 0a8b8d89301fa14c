"""Copying objects between backends in parallel, checking each one by its name on arrival.

The sync never trusts what it reads: a content-addressed object must hash to its own name
(a fixed-name one to the hash its signed manifest gives) before it is written to the target,
so a damaged source object is reported instead of replicated. With ``verify`` every written
object is read back from the target and hashed again.

From a local directory to a target that checks the MD5 of what it receives (S3), objects
are mapped instead of read and hashed in batches of up to :data:`~backup.digests.LANES`
in one call (SHA-256 for the name check and the MD5 in the same pass; see
:mod:`backup.digests`), often before the transfer starts (:mod:`replication.prehash`).
The upload reads the page cache again, but the Content-MD5 it sends is the one computed in
the hash pass, so the server refuses the object if its bytes changed in between: what it
stores is what was verified. Every other pairing (SFTP, a directory, a remote source) keeps
one object per upload thread, read, hashed and sent as exactly those bytes.

The first failure stops the remaining transfers: when an endpoint is down, every other
object would only wait out its own retry budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from backup.digests import LANES, Buffer, Digests, digest_all
from dc.failpoint import failpoint
from replication.prehash import SourceDigests
from storage.backend import Backend, ObjectInfo, check_key
from storage.capabilities import ChecksumRequesting, as_capability
from storage.errors import ObjectNotFound, StorageError
from storage.local import LocalBackend
from storage.naming import content_name

#: an object for an upload thread: its body and digests when already read and hashed
Work = tuple[ObjectInfo, "Buffer | None", "Digests | None"]


@dataclass
class TransferOutcome:
    copied: list[str] = field(default_factory=list)
    bytes: int = 0
    #: ``{key: problem}`` for objects that were not copied
    errors: dict[str, str] = field(default_factory=dict)
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
        known: SourceDigests | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.jobs = max(1, jobs)
        self.verify = verify
        self.retain_until = retain_until
        self.expected_hashes = expected_hashes or {}
        self.expected_sizes = expected_sizes or {}
        self.progress = progress
        self.stop_on_error = stop_on_error
        self._lock = threading.Lock()
        self._count = 0
        #: bytes read from the source by mapping (the source's own meter does not see them)
        self.bytes_mapped = 0
        #: the target checks a Content-MD5 of each upload (S3) and takes it from the hash pass
        self._checksums = as_capability(target, ChecksumRequesting)
        local = as_capability(source, LocalBackend)
        self._mapped_root = local.root if local is not None and self._checksums is not None else None
        #: packs hashed while the run was starting (replication/prehash.py): mapped sources only,
        #: whose uploads send the MD5 computed there
        self.known = known if self._mapped_root is not None else None

    def expected_hash(self, key: str) -> str | None:
        return content_name(key) or self.expected_hashes.get(key)

    def copy(self, infos: list[ObjectInfo]) -> TransferOutcome:
        """Copy ``infos`` (largest first, so the tail of a phase is not one big object alone)."""
        outcome = TransferOutcome()
        stop = threading.Event()
        ordered = sorted(infos, key=lambda i: -i.size)
        if not ordered:
            return outcome
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="bcp-replicate") as pool:
            held: list[list[Future[None]]] = []
            try:
                for work, hashed in self._work(ordered, outcome, stop):
                    if stop.is_set():
                        break
                    if len(held) == 2:  # bounded memory: wait for the batch before last
                        for future in held.pop(0):
                            future.result()
                    send = self._send
                    held.append([pool.submit(send, info, body, dig, outcome, stop, hashed) for info, body, dig in work])
                for futures in held:
                    for future in futures:
                        future.result()
            except BaseException:
                stop.set()
                raise
        return outcome

    # -- batches ----------------------------------------------------------------------------

    def _work(
        self, ordered: list[ObjectInfo], outcome: TransferOutcome, stop: threading.Event
    ) -> Iterator[tuple[list[Work], threading.Semaphore | None]]:
        """Groups of ``(object, body, digests)`` for the upload threads, in this order:

        1. objects :class:`~replication.prehash.SourceDigests` hashed while the run started
           (read and sent by the upload threads without hashing);
        2. otherwise (or when no more are left than upload threads) one object per upload
           thread, each hashed by its thread, so uploads start at once; the next batch is
           hashed only when they have (``hashed`` counts them), as on two cores hashing it
           meanwhile would delay the first uploads;
        3. batches of up to :data:`LANES` objects read and hashed together.
        """
        if self._mapped_root is None:
            # loaded objects would sit in memory while a batch fills: each upload thread reads and
            # hashes its own, one at a time (peak memory ~jobs objects, as before lanes existed)
            yield [(info, None, None) for info in ordered], None
            return
        rest = ordered
        if self.known is not None:
            self.known.stop()
            ready, rest = self._prehashed(rest)
            if ready:
                yield ready, None
        solo: threading.Semaphore | None = None
        # Solo when nothing was hashed ahead, and when what is left is one object per upload
        # thread: waiting for the prehash thread's batch in hand (mostly packs the target already
        # has, in an incremental run) cost an incremental run ~0.2 s.
        if rest and (len(rest) == len(ordered) or len(rest) <= self.jobs):
            solo = threading.Semaphore(0)
            yield [(info, None, None) for info in rest[: self.jobs]], solo
            for _ in rest[: self.jobs]:
                solo.acquire()
            rest = rest[self.jobs :]
        if self.known is not None and any(self.known.covers(info.key) for info in rest):
            self.known.join()  # its last batch: use it rather than hash those objects twice
            ready, rest = self._prehashed(rest)
            if ready:
                yield ready, None
        for start in range(0, len(rest), LANES):
            yield self._hashed(rest[start : start + LANES], outcome, stop), None

    def _prehashed(self, infos: list[ObjectInfo]) -> tuple[list[Work], list[ObjectInfo]]:
        assert self.known is not None
        ready, rest = [], []
        for info in infos:
            dig = self.known.take(info.key, info.size)
            if dig is None:
                rest.append(info)
            else:
                ready.append((info, None, dig))
        return ready, rest

    def _hashed(
        self, batch: list[ObjectInfo], outcome: TransferOutcome, stop: threading.Event
    ) -> list[tuple[ObjectInfo, Buffer, Digests]]:
        """Read a batch and hash it in one call; objects that fail their check are reported here."""
        bodies = self._read(batch, outcome, stop)
        digests = digest_all([body for _, body in bodies], md5=self._checksums is not None)
        verified = []
        for (info, body), dig in zip(bodies, digests, strict=True):
            problem = self._problem(info.key, body, dig)
            if problem is None:
                verified.append((info, body, dig))
            else:
                _release(body)
                self._fail(info.key, problem, outcome, stop)
        return verified

    def _read(
        self, batch: list[ObjectInfo], outcome: TransferOutcome, stop: threading.Event
    ) -> list[tuple[ObjectInfo, Buffer]]:
        bodies = []
        for info in batch:
            body = self._map(info)
            if isinstance(body, StorageError):
                self._fail(info.key, body, outcome, stop)
            elif isinstance(body, BaseException):
                raise body
            else:
                bodies.append((info, body))
        return bodies

    def _load(self, info: ObjectInfo) -> Buffer | BaseException:
        try:
            return self.source.load(info.key)
        except BaseException as exc:  # raised by the caller
            return exc

    def _map(self, info: ObjectInfo) -> Buffer | BaseException:
        """The object's bytes straight from the page cache (no copy into this process)."""
        assert self._mapped_root is not None
        try:
            fd = os.open(self._mapped_root / check_key(info.key), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return ObjectNotFound(f"object {info.key} not found in {self.source.url}")
        except OSError as exc:
            return StorageError(f"cannot read {info.key} in {self.source.url}: {exc.strerror}")
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return b""
            view = mmap.mmap(fd, size, prot=mmap.PROT_READ, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
        except OSError:  # a filesystem that cannot map files: read them like any backend
            return self._load(info)
        finally:
            os.close(fd)
        with self._lock:
            self.bytes_mapped += size
        return view

    def _problem(self, key: str, body: Buffer, dig: Digests) -> StorageError | None:
        expected = self.expected_hash(key)
        size = self.expected_sizes.get(key)
        if expected is not None and dig.hex != expected:
            return StorageError(f"{key} at the source does not match its name or manifest hash (damaged there)")
        if size is not None and len(body) != size:
            return StorageError(f"{key} at the source has {len(body)} bytes, the signed manifest says {size}")
        return None

    # -- one object -------------------------------------------------------------------------

    def _send(
        self,
        info: ObjectInfo,
        body: Buffer | None,
        dig: Digests | None,
        outcome: TransferOutcome,
        stop: threading.Event,
        hashed: threading.Semaphore | None = None,
    ) -> None:
        """Upload one verified object (or, with ``body`` ``None``, read and verify it first,
        releasing ``hashed`` once that is done)."""
        key = info.key
        try:
            if stop.is_set():
                if hashed is not None:
                    hashed.release()
                return
            if body is None:
                try:
                    loaded = self._map(info) if self._mapped_root is not None else self._load(info)
                    if isinstance(loaded, BaseException):
                        raise loaded
                    body = loaded
                    if dig is None or len(body) != info.size:  # not hashed yet, or changed since
                        dig = digest_all([body], md5=self._checksums is not None)[0]
                finally:
                    if hashed is not None:
                        hashed.release()
                if problem := self._problem(key, body, dig):
                    raise problem
            assert dig is not None
            size = len(body)
            if self._checksums is not None and dig.md5 is not None:
                self._checksums.expect_md5(key, size, dig.md5)
            self.target.save(key, body, retain_until=self.retain_until)
            if self.verify and hashlib.sha256(self.target.load(key)).digest() != dig.sha256:
                raise StorageError(f"{key} reads back from the target with other bytes than were sent")
        except StorageError as exc:
            self._fail(key, exc, outcome, stop)
            return
        except BaseException:
            stop.set()  # bad credentials and the like: no point starting the other transfers
            raise
        finally:
            _release(body)
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
        with self._lock:
            outcome.errors[key] = exc.message
        if self.stop_on_error:
            stop.set()


def _release(body: Buffer | None) -> None:
    """Unmap a mapped object now rather than at garbage collection (a view still held keeps it)."""
    if isinstance(body, mmap.mmap):
        with contextlib.suppress(BufferError):
            body.close()
