"""Per-system step timings (fetch, decrypt) and the abort check, wrapped around the restore path.

Restore is a pipeline: blobs are fetched from storage, authenticated and decrypted, and
written, all overlapping across worker threads. The steps are therefore measured as *busy
time*: seconds spent inside storage reads (fetch) and inside blob authentication,
decryption, decompression and id checks (decrypt), summed over workers; the restore step is
the wall-clock time of the whole restore. Each system gets its own view of the one unlocked
repository (same key and index cache; its own metered backend and, on remote storage, its own
whole-pack cache, so whole-pack downloads count as that system's fetch time), so parallel
systems do not mix their figures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backup.cache import Location
from backup.repository import Repository
from dc.failpoint import failpoint
from failover.abort import AbortSignal
from storage.backend import Backend
from storage.wrapper import BackendWrapper


@dataclass
class StepMeter:
    fetch_seconds: float = 0.0
    fetch_bytes: int = 0
    decrypt_seconds: float = 0.0
    blobs: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def add_fetch(self, seconds: float, size: int) -> None:
        with self._lock:
            self.fetch_seconds += seconds
            self.fetch_bytes += size
        self._local.fetch = getattr(self._local, "fetch", 0.0) + seconds

    def begin_blob(self) -> None:
        self._local.fetch = 0.0

    def end_blob(self, total: float) -> None:
        with self._lock:
            self.decrypt_seconds += max(0.0, total - getattr(self._local, "fetch", 0.0))
            self.blobs += 1


class MeteredBackend(BackendWrapper):
    """A backend that times its reads and refuses to read once the run is aborted."""

    def __init__(self, inner: Backend, meter: StepMeter, abort: AbortSignal) -> None:
        super().__init__(inner)
        self.meter = meter
        self.abort = abort

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self.abort.check()
        started = time.perf_counter()
        data = self.inner.load(key, offset, length)
        self.meter.add_fetch(time.perf_counter() - started, len(data))
        return data

    def close(self) -> None:
        """The shared backend is closed by whoever opened the repository, never by a view."""


class MeteredRepository(Repository):
    """A per-system view of an unlocked repository: shares its key and cache, meters its reads."""

    def __init__(
        self, repo: Repository, meter: StepMeter, abort: AbortSignal, on_blob: Callable[[int], None] | None
    ) -> None:
        super().__init__(
            MeteredBackend(repo.backend, meter, abort),
            repo.config,
            repo.config_raw,
            repo.master,
            repo.slot_id,
            repo.cache,
        )
        self.meter = meter
        self.abort = abort
        self.on_blob = on_blob

    def read_blob_at(self, chunk_id: bytes, loc: Location, *, check_id: bool = True) -> bytes:
        self.abort.check()
        self.meter.begin_blob()
        started = time.perf_counter()
        data = super().read_blob_at(chunk_id, loc, check_id=check_id)
        self.meter.end_blob(time.perf_counter() - started)
        if self.meter.blobs >= 2:
            # Fault tests kill the drill here: the sandbox exists and data is streaming into it.
            failpoint("drill.restore.mid-stream")
        if self.on_blob is not None:
            self.on_blob(len(data))
        return data

    def close(self) -> None:
        """Drop the view's own whole-pack cache (remote storage); key, index cache and backend
        belong to the repository it was made from, which its opener closes."""
        if self._packs is not None:
            self._packs.close()
