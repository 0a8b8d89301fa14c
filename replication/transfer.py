"""Copying objects between backends in parallel, checking each one by its name on arrival.

The sync never trusts what it reads: a content-addressed object must hash to its own name
(a fixed-name one to the hash its signed manifest gives) before it is written to the target,
so a damaged source object is reported instead of replicated. With ``verify`` every written
object is read back from the target and hashed again.

The first failure stops the remaining transfers: when an endpoint is down, every other
object would only wait out its own retry budget.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from backup.backend import Backend, ObjectInfo, StorageError
from dc.failpoint import failpoint
from replication.plan import content_name


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

    def expected_hash(self, key: str) -> str | None:
        return content_name(key) or self.expected_hashes.get(key)

    def _one(self, info: ObjectInfo, outcome: TransferOutcome, stop: threading.Event) -> None:
        if stop.is_set():
            return
        key = info.key
        try:
            data = self.source.load(key)
            digest = hashlib.sha256(data).hexdigest()
            expected = self.expected_hash(key)
            if expected is not None and digest != expected:
                raise StorageError(f"{key} at the source does not match its name or manifest hash (damaged there)")
            size = self.expected_sizes.get(key)
            if size is not None and len(data) != size:
                raise StorageError(f"{key} at the source has {len(data)} bytes, the signed manifest says {size}")
            self.target.save(key, data, retain_until=self.retain_until)
            if self.verify and hashlib.sha256(self.target.load(key)).hexdigest() != digest:
                raise StorageError(f"{key} reads back from the target with other bytes than were sent")
        except StorageError as exc:
            with self._lock:
                outcome.errors[key] = exc.message
            if self.stop_on_error:
                stop.set()
            return
        except BaseException:
            stop.set()  # bad credentials and the like: no point starting the other transfers
            raise
        with self._lock:
            outcome.copied.append(key)
            outcome.bytes += len(data)
            if self.retain_until is not None:
                outcome.locked[key] = self.retain_until
            self._count += 1
            count = self._count
        if self.progress is not None:
            self.progress(len(data))
        failpoint(f"replicate.after-object-{count}")

    def copy(self, infos: list[ObjectInfo]) -> TransferOutcome:
        """Copy ``infos`` (largest first, so the tail of a phase is not one big object alone)."""
        outcome = TransferOutcome()
        stop = threading.Event()
        ordered = sorted(infos, key=lambda i: -i.size)
        if self.jobs == 1 or len(ordered) <= 1:
            for info in ordered:
                self._one(info, outcome, stop)
            return outcome
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="bcp-replicate") as pool:
            for future in [pool.submit(self._one, info, outcome, stop) for info in ordered]:
                future.result()
        return outcome
