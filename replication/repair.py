"""Putting a damaged repository copy right again, still without keys.

Each object the keyless verifier reports as damaged, truncated, missing, overwritten or
deleted gets its right bytes back from one of two places, in this order:

1. the storage's own history (S3 versioning, which Object Lock turns on). What a stolen
   write credential overwrote or deleted is still there as an older version; the verifier
   found the intact one (by its SHA-256 name, or by the signed manifest for config, key
   slots and the manifest itself). It becomes the current version again as a new version
   (CopyObject from its version id) — nothing crosses the network, the primary is not
   needed, the history is never rewritten — retained until the later of its own lock and
   ``now + lock_days``;
2. the other site: fetched again, checked against its name (or the hash the signed manifest
   gives) and written over the bad copy, retained for ``lock_days``.

Nothing is ever repaired from bytes that cannot be checked, and nothing is deleted: unsigned
snapshots stay for an operator to look at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from backup.manifest import MANIFEST_KEY, ManifestInvalid, load_manifest_bytes, verify_manifest
from backup.manifestchain import link_key, link_reader
from backup.manifeststate import CHAIN_PREFIX
from backup.repository import CONFIG_KEY
from dc.clock import utcnow
from replication.transfer import Transfer
from replication.verify import IntegrityReport, ObjectProblem, hash_object, verify_repository
from storage.backend import Backend, ObjectInfo
from storage.capabilities import Versioned, object_locking, versioned
from storage.errors import ObjectNotFound, StorageError
from storage.naming import content_name
from storage.objectlock import retain_until


@dataclass
class RepairResult:
    url: str
    #: the other site repairs may copy from (``None``: the storage's history only)
    source: str | None
    found: list[ObjectProblem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    #: ``{key: how}``: ``version V written T made current again`` or ``copied from URL``
    how: dict[str, str] = field(default_factory=dict)
    #: ``{key: why}`` for what could not be repaired
    unrepairable: dict[str, str] = field(default_factory=dict)
    #: problems repair does not address (unsigned snapshots) or that remain
    remaining: list[ObjectProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unrepairable and not self.remaining


def _manifest_hashes(other: Backend, report: IntegrityReport, pinned_key: str | None) -> dict[str, str]:
    """Hashes for fixed-name objects, from whichever verified manifest is available."""
    try:
        raw = load_manifest_bytes(other)
    except (ObjectNotFound, ManifestInvalid):
        return {}
    try:
        manifest = verify_manifest(raw, public_key=pinned_key, repo_id=report.repository, load=link_reader(other))
    except ManifestInvalid:
        return {}
    hashes = {CONFIG_KEY: manifest.config_sha256, **manifest.keys}
    if report.manifest_sequence is None or manifest.sequence >= report.manifest_sequence:
        hashes[MANIFEST_KEY] = hashlib.sha256(raw).hexdigest()
        # the links its verification just read: each one's hash is the one its successor signs
        load = link_reader(other)
        for position in range(manifest.first_position or manifest.position + 1, manifest.position + 1):
            try:
                hashes[link_key(position)] = hashlib.sha256(load(link_key(position))).hexdigest()
            except (ObjectNotFound, ManifestInvalid):
                continue  # gone or changed there since its verification: not offered as a repair
    return hashes


def repair_repository(
    damaged: Backend,
    other: Backend | None,
    *,
    pinned_key: str | None = None,
    min_sequence: int = 0,
    jobs: int = 4,
    lock_days: int = 0,
    now: datetime | None = None,
) -> RepairResult:
    """Verify ``damaged`` and put right every damaged, missing, overwritten or deleted object."""
    now = now or utcnow()
    report = verify_repository(damaged, pinned_key=pinned_key, min_sequence=min_sequence, jobs=jobs)
    result = RepairResult(damaged.url, other.url if other else None, found=list(report.problems))
    wanted = set(report.damaged_keys())
    if any(p.key == MANIFEST_KEY and p.kind in ("manifest", "missing") for p in report.problems):
        wanted.add(MANIFEST_KEY)
    lock_until = retain_until(now, lock_days) if lock_days else None
    history = versioned(damaged)
    if history is not None:
        for problem in report.problems:
            if problem.version_id is not None and problem.key in wanted:
                error = _from_history(damaged, history, problem, lock_until, now, result)
                if error is None:
                    wanted.discard(problem.key)
                elif other is None:
                    result.unrepairable[problem.key] = error
    if other is None:
        for key in sorted(wanted - set(result.unrepairable)):
            result.unrepairable[key] = "no intact version in the storage's history, and no other site (--from URL)"
    else:
        _from_other(damaged, other, report, sorted(wanted), pinned_key, lock_until, jobs, result)
    result.repaired.sort()
    # What is left: a presence-and-signature pass (repaired objects were just hashed).
    after = verify_repository(damaged, pinned_key=pinned_key, min_sequence=min_sequence, read_data=False, jobs=jobs)
    result.remaining = [p for p in after.problems if p.key not in result.unrepairable]
    return result


def _from_history(
    damaged: Backend,
    history: Versioned,
    problem: ObjectProblem,
    lock_until: datetime | None,
    now: datetime,
    result: RepairResult,
) -> str | None:
    """Make the intact version the verifier found current again; ``None`` on success, else why not."""
    key, version_id = problem.key, problem.version_id
    assert version_id is not None
    try:
        expected = content_name(key) or hashlib.sha256(history.load_version(key, version_id)).hexdigest()
        until = lock_until
        locks = object_locking(damaged)
        if locks is not None:
            own = locks.lock_until(key, version_id)
            if own is not None and own > now and (until is None or own > until):
                until = own  # never shorten the protection the intact version had
        history.restore_version(key, version_id, retain_until=until)
        digest, _ = hash_object(damaged, damaged.stat(key))
    except StorageError as exc:
        return f"could not make version {version_id} current: {exc.message}"
    if digest != expected:
        return f"version {version_id} made current, but the current bytes still do not match"
    result.repaired.append(key)
    result.how[key] = f"version {version_id} made current again" + (f", locked until {until:%Y-%m-%d}" if until else "")
    return None


def _differs(backend: Backend, key: str, digest: str) -> bool:
    try:
        return hash_object(backend, backend.stat(key))[0] != digest
    except ObjectNotFound:
        return True


def _from_other(
    damaged: Backend,
    other: Backend,
    report: IntegrityReport,
    wanted: list[str],
    pinned_key: str | None,
    lock_until: datetime | None,
    jobs: int,
    result: RepairResult,
) -> None:
    """Fetch ``wanted`` from the other site, each checked against its name or signed hash."""
    hashes = _manifest_hashes(other, report, pinned_key)
    if MANIFEST_KEY in wanted:
        # a link dropped or damaged here is reported as the manifest's problem (its chain does not
        # verify), without the link's name: every link of the other site's verified chain that
        # differs here is put back with it
        wanted = wanted + [
            key
            for key, digest in sorted(hashes.items())
            if key.startswith(CHAIN_PREFIX) and key not in wanted and _differs(damaged, key, digest)
        ]
    todo = []
    for key in wanted:
        if content_name(key) is None and key not in hashes:
            result.unrepairable[key] = "no signed hash to check a copy from the other site against"
            continue
        try:
            todo.append(ObjectInfo(key, other.stat(key).size, 0.0))
        except ObjectNotFound:
            result.unrepairable[key] = f"missing at {other.url} too"
    transfer = Transfer(
        other,
        damaged,
        jobs=jobs,
        verify=True,
        retain_until=lock_until,
        expected_hashes=hashes,
        stop_on_error=False,
    )
    outcome = transfer.copy(todo)
    result.unrepairable.update(outcome.errors)
    for key in sorted(outcome.copied):
        expected = content_name(key) or hashes[key]
        try:
            digest, _ = hash_object(damaged, damaged.stat(key))
        except StorageError as exc:
            result.unrepairable[key] = exc.message
            continue
        if digest == expected:
            result.repaired.append(key)
            result.how[key] = f"copied from {other.url}"
        else:
            result.unrepairable[key] = "still damaged after the repair (storage corrupts writes?)"
