"""Repairing a damaged repository copy from the other site, still without keys.

What the keyless verifier reports as damaged, truncated or missing is fetched again from
the other site, checked against its name (or, for config and key slots, against the hash
the signed manifest gives) and written over the bad copy. Nothing is ever repaired from
bytes that cannot be checked, and nothing is deleted: unsigned snapshots stay for an
operator to look at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from backup.backend import Backend, ObjectInfo, ObjectNotFound, StorageError
from backup.manifest import MANIFEST_KEY, ManifestInvalid, verify_manifest
from backup.repository import CONFIG_KEY
from replication.plan import content_name
from replication.transfer import Transfer
from replication.verify import IntegrityReport, ObjectProblem, hash_object, verify_repository


@dataclass
class RepairResult:
    url: str
    source: str
    found: list[ObjectProblem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    #: ``{key: why}`` for what could not be repaired from the other site
    unrepairable: dict[str, str] = field(default_factory=dict)
    #: problems repair does not address (unsigned snapshots) or that remain
    remaining: list[ObjectProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unrepairable and not self.remaining


def _manifest_hashes(other: Backend, report: IntegrityReport, pinned_key: str | None) -> dict[str, str]:
    """Hashes for fixed-name objects, from whichever verified manifest is available."""
    try:
        raw = other.load(MANIFEST_KEY)
    except ObjectNotFound:
        return {}
    try:
        manifest = verify_manifest(raw, public_key=pinned_key, repo_id=report.repository)
    except ManifestInvalid:
        return {}
    hashes = {CONFIG_KEY: manifest.config_sha256, **manifest.keys}
    if report.manifest_sequence is None or manifest.sequence >= report.manifest_sequence:
        hashes[MANIFEST_KEY] = hashlib.sha256(raw).hexdigest()
    return hashes


def repair_repository(
    damaged: Backend,
    other: Backend,
    *,
    pinned_key: str | None = None,
    min_sequence: int = 0,
    jobs: int = 4,
) -> RepairResult:
    """Verify ``damaged`` and re-fetch every damaged, truncated or missing object from ``other``."""
    report = verify_repository(damaged, pinned_key=pinned_key, min_sequence=min_sequence, jobs=jobs)
    result = RepairResult(damaged.url, other.url, found=list(report.problems))
    wanted = set(report.damaged_keys())
    if any(p.key == MANIFEST_KEY and p.kind in ("manifest", "missing") for p in report.problems):
        wanted.add(MANIFEST_KEY)
    hashes = _manifest_hashes(other, report, pinned_key)
    todo = []
    for key in sorted(wanted):
        if content_name(key) is None and key not in hashes:
            result.unrepairable[key] = "no signed hash to check a copy from the other site against"
            continue
        try:
            todo.append(ObjectInfo(key, other.stat(key).size, 0.0))
        except ObjectNotFound:
            result.unrepairable[key] = f"missing at {other.url} too"
    transfer = Transfer(other, damaged, jobs=jobs, verify=True, expected_hashes=hashes, stop_on_error=False)
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
        else:
            result.unrepairable[key] = "still damaged after the repair (storage corrupts writes?)"
    # What is left: a presence-and-signature pass (repaired objects were just hashed).
    after = verify_repository(damaged, pinned_key=pinned_key, min_sequence=min_sequence, read_data=False, jobs=jobs)
    result.remaining = [p for p in after.problems if p.key not in result.unrepairable]
    return result
