"""S3 Object Lock at the offsite: retention dates, and extending them for packs still in use.

With COMPLIANCE-mode retention nobody — not the offsite's own administrators, not ransomware
holding the primary's credentials and key — can delete or overwrite an object version
before its retain-until date (the gateway answers AccessDenied; the fault tests assert it).

The retention period comes from the retention policy: ``object_lock_days`` (site config or
``--object-lock-days``) is set to the longest span the policy keeps a snapshot for. New
objects are locked until ``now + days``. A pack that new snapshots still reference (it is in
the current signed manifest) must outlive its first lock, so its lock is extended — but only
when less than half the period remains, so each pack is touched at most once per half
period instead of on every run (Kopia re-extends everything at every maintenance).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dc.errors import N_, UsageError
from storage.backend import Backend
from storage.capabilities import object_locking
from storage.errors import ObjectNotFound, StorageError


def retain_until(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


def needs_extension(current: datetime | None, now: datetime, days: int) -> bool:
    """Whether an object still in use must have its lock moved later (less than half the period left)."""
    return current is None or current < now + timedelta(days=days) / 2


def require_lock_support(backend: Backend, days: int) -> None:
    if days > 0 and not backend.capabilities.object_lock:
        raise UsageError(
            N_("--object-lock-days {days} needs an S3 bucket created with Object Lock enabled; {url} has none"),
            days=days,
            url=backend.url,
        )


@dataclass
class LockExtension:
    extended: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    until: dict[str, datetime] = field(default_factory=dict)


def extend_locks(
    backend: Backend,
    keys: Iterable[str],
    known: dict[str, datetime],
    now: datetime,
    days: int,
    *,
    jobs: int = 4,
) -> LockExtension:
    """Make every key in ``keys`` locked for at least half the period; return what changed.

    ``known`` is the lock ledger; a key missing from it is asked of the storage once.
    """
    locking = object_locking(backend)
    if locking is None:
        raise UsageError(N_("{url} cannot lock objects (an S3 bucket created with Object Lock can)"), url=backend.url)
    result = LockExtension()
    target = retain_until(now, days)

    def one(key: str) -> None:
        current = known.get(key)
        try:
            if current is None or needs_extension(current, now, days):
                current = locking.lock_until(key)
                if current is not None and current.tzinfo is None:
                    current = current.replace(tzinfo=target.tzinfo)
            if needs_extension(current, now, days):
                locking.extend_lock(key, target)
                result.extended.append(key)
                current = target
            if current is not None:
                result.until[key] = current
        except ObjectNotFound:
            pass  # deleted meanwhile: nothing to protect
        except StorageError as exc:
            result.errors[key] = exc.message

    candidates = [k for k in keys if needs_extension(known.get(k), now, days)]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(one, candidates))
    return result
