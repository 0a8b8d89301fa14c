"""Keyless integrity verification of a repository, run where the data is (the offsite).

Without any key the offsite can still prove a great deal (research §4 "Do better" 1):

* every content-addressed object's bytes hash to its name (packs, indexes, snapshots);
* the signed manifest verifies with the pinned public key and is not older than the newest
  one ever accepted (rollback);
* every object the manifest names is present with the size it names — so every snapshot's
  indexes and packs exist, as far as can be known without decrypting the snapshot;
* config and key slots hash to what the manifest signs;
* no snapshot exists that the manifest does not sign (forged, planted, or an interrupted
  replication that the next run completes) — except those it lists as removed by retention
  at the primary, which the delayed deletion keeps offsite for a while (reported as such);
* where the storage keeps versions, no object the state needs is hidden under a newer
  version with other bytes or under a delete marker (what a stolen write credential can do
  despite Object Lock). Verification then reads the state through
  :class:`~replication.history.HistoryView`, so it also checks what the history still holds,
  and names each object that needs the old version put back.

``bcpctl check --integrity-only`` and ``bcpctl verify-offsite`` call :func:`verify_repository`;
``bcpctl replicate --repair`` puts back what it reports, from the history or the other site.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup.errors import NotARepository
from backup.manifest import MANIFEST_KEY, Manifest, ManifestInvalid, load_manifest_bytes, verify_manifest
from backup.manifestchain import link_reader
from backup.manifeststate import CHAIN_PREFIX
from backup.objectsize import OversizedObject, load_whole
from backup.repository import CONFIG_KEY, RepoConfig
from dc.clock import utcnow
from dc.errors import N_, Message, message_of
from replication.history import open_history, sha256_pieces
from replication.plan import DEFAULT_DELETE_DELAY
from storage.backend import Backend, ObjectInfo
from storage.errors import ObjectNotFound, StorageError
from storage.naming import content_name, is_content_addressed

_KNOWN_PREFIXES = ("data/", "meta/", "index/", "snapshots/", "tombstones/", "keys/", "locks/", "wal/", CHAIN_PREFIX)


@dataclass(frozen=True)
class ObjectProblem:
    key: str
    #: ``missing`` | ``damaged`` | ``size`` | ``unsigned`` | ``manifest`` | ``config``, and where
    #: the storage keeps versions ``overwritten`` | ``deleted`` (an intact older version exists)
    kind: str
    detail: str
    #: the intact older version that ``replicate --repair`` makes current again
    version_id: str | None = None


@dataclass(frozen=True)
class KeptSnapshot:
    """A snapshot retention removed at the primary that the offsite still holds (delete delay)."""

    id: str
    system: str | None
    #: when the primary signed a state without it
    removed: str
    #: when the delete delay ends, after which replication deletes it (unless Object Lock holds it)
    until: str


@dataclass
class IntegrityReport:
    url: str
    repository: str | None = None
    ok: bool = True
    objects_checked: int = 0
    bytes_checked: int = 0
    seconds: float = 0.0
    manifest_sequence: int | None = None
    manifest_time: str | None = None
    manifest_key: str | None = None
    pinned: bool = False
    snapshots_signed: int = 0
    #: the storage keeps versions: problems include ``overwritten`` and ``deleted``
    versioned: bool = False
    kept_by_delay: list[KeptSnapshot] = field(default_factory=list)
    #: one line on ``kept_by_delay`` for people, if there are any
    kept_note: str | None = None
    problems: list[ObjectProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def damaged_keys(self) -> list[str]:
        """Objects whose bytes must be put back (repair): damaged, missing, wrongly sized, overwritten, deleted."""
        kinds = ("missing", "damaged", "size", "config", "overwritten", "deleted")
        return sorted({p.key for p in self.problems if p.kind in kinds})

    def summary(self) -> str:
        if not self.problems:
            return f"{self.url}: {self.objects_checked} objects verified, no problems"
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.url}: {len(self.problems)} problem(s): {first.key}: {first.detail}{more}"


def unpinned_stranger(repo_id: str) -> ObjectProblem:
    """The config names a repository no replication here pinned, at a place replications were accepted."""
    return ObjectProblem(
        CONFIG_KEY,
        "config",
        Message(
            N_(
                "config names repository {repository}, which no replication to this place pinned, though "
                "replications here were accepted: the repository was replaced (no pinned key to verify it with)"
            ),
            repository=repo_id[:8],
        ),
    )


def hash_object(backend: Backend, info: ObjectInfo) -> tuple[str, int]:
    """SHA-256 and length of an object, read in bounded pieces."""
    return sha256_pieces(lambda offset, length: backend.load(info.key, offset, length), info.size)


def _check_manifest(
    backend: Backend,
    report: IntegrityReport,
    repo_id: str | None,
    pinned_key: str | None,
    min_sequence: int,
    accepted_sha256: str = "",
) -> Manifest | None:
    try:
        raw = load_manifest_bytes(backend)
    except ManifestInvalid as exc:
        report.problems.append(ObjectProblem(MANIFEST_KEY, "manifest", message_of(exc)))
        return None
    except ObjectNotFound:
        if pinned_key:
            report.problems.append(
                ObjectProblem(MANIFEST_KEY, "missing", Message(N_("signed manifest missing (key is pinned)")))
            )
        else:
            report.warnings.append(Message(N_("no signed manifest: the snapshot set cannot be verified")))
        return None
    try:
        accepted = (min_sequence, accepted_sha256) if min_sequence else None
        manifest = verify_manifest(
            raw,
            public_key=pinned_key,
            repo_id=repo_id,
            where=MANIFEST_KEY,
            load=link_reader(backend),
            accepted=accepted,
        )
    except ManifestInvalid as exc:
        report.problems.append(ObjectProblem(MANIFEST_KEY, "manifest", message_of(exc)))
        return None
    report.manifest_sequence = manifest.sequence
    report.manifest_time = manifest.time
    report.manifest_key = manifest.public_key
    report.pinned = pinned_key is not None
    report.snapshots_signed = len(manifest.snapshots)
    if not pinned_key:
        report.warnings.append(
            Message(
                N_("manifest key {public_key}… is not pinned: verified against itself"),
                public_key=manifest.public_key[:16],
            )
        )
    if manifest.sequence < min_sequence:
        report.problems.append(
            ObjectProblem(
                MANIFEST_KEY,
                "manifest",
                Message(
                    N_("manifest sequence {sequence} is older than {min_sequence} already accepted (rolled back)"),
                    sequence=manifest.sequence,
                    min_sequence=min_sequence,
                ),
            )
        )
    return manifest


def verify_repository(
    backend: Backend,
    *,
    pinned_key: str | None = None,
    min_sequence: int = 0,
    accepted_sha256: str = "",
    read_data: bool = True,
    jobs: int = 4,
    progress: Callable[[int], None] | None = None,
    delete_delay: timedelta = DEFAULT_DELETE_DELAY,
    as_of: datetime | None = None,
    now: datetime | None = None,
) -> IntegrityReport:
    """Check everything that can be checked without a key; never writes.

    ``delete_delay`` is the offsite's (``replicate --delete-delay``): it dates how long a
    snapshot the primary removed stays offsite. ``as_of`` verifies the state the storage's
    version history held at that time. ``accepted_sha256``: the manifest accepted at
    ``min_sequence``; a format-2 chain that does not pass through it is a fork.
    """
    started = time.monotonic()
    if as_of is not None:
        min_sequence, accepted_sha256 = (
            0,
            "",
        )  # the sequence accepted so far is the present's; a past state is older by design
    view = open_history(backend, as_of=as_of)
    report = IntegrityReport(view.url if view else backend.url)
    if view is not None:
        view.trust(pinned_key, min_sequence)
        report.versioned = True
    reader: Backend = view or backend
    repo_id = None
    try:
        config_raw = load_whole(reader, CONFIG_KEY, "config")
        repo_id = RepoConfig.parse(config_raw, CONFIG_KEY).id
        report.repository = repo_id
    except ObjectNotFound:
        raise NotARepository(N_("no bcpctl repository at {url}"), url=backend.url) from None
    except (NotARepository, OversizedObject) as exc:
        config_raw = b""
        report.problems.append(ObjectProblem(CONFIG_KEY, "config", message_of(exc)))
    manifest = _check_manifest(reader, report, repo_id, pinned_key, min_sequence, accepted_sha256)
    listing = {info.key: info for info in reader.list("")}

    if manifest is not None:
        if config_raw and hashlib.sha256(config_raw).hexdigest() != manifest.config_sha256:
            report.problems.append(
                ObjectProblem(CONFIG_KEY, "config", Message(N_("config differs from the signed manifest")))
            )
        for key, size in sorted(manifest.referenced().items()):
            info = listing.get(key)
            if info is None:
                report.problems.append(
                    ObjectProblem(key, "missing", Message(N_("named by the signed manifest but missing")))
                )
            elif size is not None and info.size != size:
                report.problems.append(
                    ObjectProblem(
                        key,
                        "size",
                        Message(
                            N_("{size} bytes, the signed manifest says {expected} (truncated?)"),
                            size=info.size,
                            expected=size,
                        ),
                    )
                )
        for key, digest in sorted(manifest.keys.items()):
            if key not in listing:
                report.problems.append(
                    ObjectProblem(key, "missing", Message(N_("key slot named by the manifest is missing")))
                )
            elif hash_object(reader, listing[key])[0] != digest:  # in pieces: a planted giant costs no memory
                report.problems.append(
                    ObjectProblem(key, "damaged", Message(N_("key slot differs from the signed manifest")))
                )
        for key in sorted(k for k in listing if k.startswith("keys/") and k not in manifest.keys):
            report.warnings.append(
                Message(N_("key slot {key} is not in the signed manifest (added after the last signature?)"), key=key)
            )
        _check_snapshot_set(manifest, listing, report, delete_delay, now or utcnow())
    for key in sorted(listing):
        if key not in (CONFIG_KEY, MANIFEST_KEY) and not key.startswith(_KNOWN_PREFIXES):
            report.warnings.append(Message(N_("{key} is not a repository object"), key=key))

    _hash_all(reader, listing, report, read_data, jobs, progress)
    if view is not None:
        report.warnings += view.notes
        remedy = f"run 'bcpctl replicate --repair --to {backend.url}' to make it current again"
        for recovery in view.recoveries.values():
            report.problems.append(
                ObjectProblem(recovery.key, recovery.kind, f"{recovery.describe()}: {remedy}", recovery.version_id)
            )
        report.problems.sort(key=lambda p: (p.key, p.kind))
    report.ok = not report.problems
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _check_snapshot_set(
    manifest: Manifest, listing: dict[str, ObjectInfo], report: IntegrityReport, delay: timedelta, now: datetime
) -> None:
    """Every snapshot present is signed, or signed away by retention and kept for the delete delay."""
    signed = manifest.snapshot_ids
    removed = {r.id: r for r in manifest.removed}
    for key in sorted(k for k in listing if k.startswith("snapshots/")):
        snapshot_id = key.removeprefix("snapshots/")
        if snapshot_id in signed:
            continue
        gone = removed.get(snapshot_id)
        if gone is not None:
            until = datetime.fromisoformat(gone.removed) + delay
            report.kept_by_delay.append(KeptSnapshot(snapshot_id, gone.system, gone.removed, until.isoformat()))
            continue
        report.problems.append(
            ObjectProblem(
                key,
                "unsigned",
                Message(
                    N_(
                        "snapshot not yet signed: neither in the signed manifest nor in its list of "
                        "snapshots removed by retention (at the primary, committed by a process that "
                        "has not signed yet or died before signing: the next checkpoint, prune or "
                        "'manifest sign', signs it; otherwise forged or planted, or a replication "
                        "interrupted before its manifest: run replicate again)"
                    )
                ),
            )
        )
    if report.kept_by_delay:
        until = max(datetime.fromisoformat(k.until) for k in report.kept_by_delay)
        report.kept_note = (
            f"{len(report.kept_by_delay)} snapshot(s) removed at the primary, kept offsite until "
            f"{until.isoformat(timespec='seconds')} by the delete delay"
        )
    if any(datetime.fromisoformat(k.until) < now for k in report.kept_by_delay):
        report.warnings.append(
            Message(
                N_(
                    "some snapshots removed at the primary are still here after the delete delay: "
                    "replication has not run since, or their Object Lock retention still holds them"
                )
            )
        )


def _hash_all(
    backend: Backend,
    listing: dict[str, ObjectInfo],
    report: IntegrityReport,
    read_data: bool,
    jobs: int,
    progress: Callable[[int], None] | None,
) -> None:
    lock = threading.Lock()
    candidates = [info for key, info in sorted(listing.items()) if is_content_addressed(key)]

    def one(info: ObjectInfo) -> None:
        name = content_name(info.key)
        problem = None
        size = info.size
        if name is None:
            problem = ObjectProblem(
                info.key, "damaged", Message(N_("object name is not a SHA-256 in the right directory"))
            )
        elif read_data:
            try:
                digest, size = hash_object(backend, info)
            except ObjectNotFound:
                return  # removed while verifying (a delayed deletion at the target)
            except StorageError as exc:
                problem = ObjectProblem(
                    info.key, "damaged", Message(N_("unreadable: {reason}"), reason=message_of(exc))
                )
            else:
                if digest != name:
                    problem = ObjectProblem(info.key, "damaged", Message(N_("bytes do not hash to the object's name")))
        with lock:
            report.objects_checked += 1
            report.bytes_checked += size if read_data else 0
            if problem is not None:
                report.problems.append(problem)
        if progress is not None:
            progress(info.size)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(one, candidates))
    report.problems.sort(key=lambda p: (p.key, p.kind))
