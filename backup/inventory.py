"""The inventory part of ``check``: what the signed manifest says is there against what is.

Content-hash names prove that an object is intact, not that it is still there: a deleted
snapshot, key slot or index file leaves no trace among the objects that remain. The signed
manifest (:mod:`backup.manifest`) lists them, so a keyed check compares: anything it signs
that is missing or changed is a problem; anything newer than the last signature is only a
note (a backup commits its snapshot before it signs, and the offsite keeps removed objects
for its delete delay). Prune's tombstones and lease, and files that are no bcpctl object at
all, are reported here too. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from backup.checkreport import REPAIR_INDEX, CheckReport, Problem
from backup.keys import KEYS_PREFIX, slot_digests
from backup.layout import TOMBSTONE_PREFIX, place_of
from backup.manifest import MANIFEST_KEY, ManifestInvalid, load_manifest_bytes, repository_public_key, verify_manifest
from backup.objectsize import OversizedObject, load_whole
from backup.prune import LEASE_KEY
from backup.repository import SNAPSHOT_PREFIX, Repository
from dc.errors import BcpError
from storage.backend import ObjectInfo


def check_inventory(
    repo: Repository, listing: Mapping[str, ObjectInfo], superseded: set[str], report: CheckReport
) -> None:
    """``superseded``: index files a present index file replaces (prune deletes those)."""
    _check_manifest(repo, listing, superseded, report)
    for key in sorted(listing):
        place = place_of(key)
        if place.kind == "tombstone":
            try:
                repo.load_sealed(TOMBSTONE_PREFIX, "tombstone", place.name)
            except BcpError as exc:
                report.problems.append(Problem(key, f"{exc.message}; prune refuses to run while it is unreadable"))
        elif place.kind == "lock":
            try:
                raw = load_whole(repo.backend, key, "lock", size=listing[key].size)
            except OversizedObject as exc:
                report.problems.append(Problem(key, exc.message))
                continue
            except BcpError:
                continue  # released while we looked
            report.notes.append(Problem(key, _describe_lock(key, raw, listing[key].mtime)))
        elif place.kind is None:
            report.notes.append(Problem(key, "not a bcpctl object (a stray file?); nothing reads it"))


def _check_manifest(
    repo: Repository, listing: Mapping[str, ObjectInfo], superseded: set[str], report: CheckReport
) -> None:
    snapshot_keys = sorted(k for k in listing if k.startswith(SNAPSHOT_PREFIX))
    if repo.state_changed:
        # This very session changed the repository; it signs the new state when it closes.
        report.notes.append(Problem(MANIFEST_KEY, "not compared: this session's changes are signed when it closes"))
        return
    if MANIFEST_KEY not in listing:
        if snapshot_keys:
            report.problems.append(
                Problem(
                    MANIFEST_KEY,
                    "the signed manifest is missing (deleted?); the offsite cannot verify this repository "
                    "until the next backup, forget or prune signs a new one",
                )
            )
        return
    try:
        raw = load_manifest_bytes(repo.backend)
        manifest = verify_manifest(raw, public_key=repository_public_key(repo), repo_id=repo.config.id)
    except (ManifestInvalid, BcpError) as exc:
        report.problems.append(Problem(MANIFEST_KEY, exc.message))
        return
    for entry in manifest.snapshots:
        key = SNAPSHOT_PREFIX + entry.id
        if key not in listing:
            report.problems.append(
                Problem(
                    key,
                    f"snapshot of {entry.time} (system {entry.system}) is signed by the manifest but missing "
                    "(deleted outside bcpctl, or a forget interrupted before it signed)",
                )
            )
            report.affected_snapshots.append(entry.id)
    for key in snapshot_keys:
        if key.removeprefix(SNAPSHOT_PREFIX) not in manifest.snapshot_ids:
            report.notes.append(Problem(key, "not in the signed manifest yet (committed after the last signature)"))
    for name in manifest.indexes:
        key = "index/" + name
        if key not in listing and name not in superseded:
            report.problems.append(
                Problem(key, f"index file signed by the manifest is missing (deleted?); '{REPAIR_INDEX}' rebuilds it")
            )
            report.suggest(REPAIR_INDEX)
    if hashlib.sha256(repo.config_raw).hexdigest() != manifest.config_sha256:
        report.problems.append(Problem("config", "config differs from the signed manifest"))
    for key, digest in sorted(manifest.keys.items()):
        if key not in listing:
            report.problems.append(Problem(key, "key slot signed by the manifest is missing (deleted?)"))
        elif _slot_digest(repo, key, listing[key].size) != digest:
            report.problems.append(Problem(key, "key slot differs from the signed manifest (damaged or replaced)"))
    usable = slot_digests(repo.backend)
    for key in sorted(k for k in listing if k.startswith(KEYS_PREFIX) and k not in manifest.keys):
        if key in usable:
            message = (
                "key slot not in the signed manifest: unlocking tries it only after the signed ones; if no key "
                "holder added it, it is planted ('bcpctl key remove --unsigned')"
            )
        else:
            message = "not a usable key slot, and not signed: it opens nothing ('bcpctl key remove NAME')"
        report.notes.append(Problem(key, message))


def _slot_digest(repo: Repository, key: str, size: int) -> str | None:
    """SHA-256 of a key slot; ``None`` for one no genuine slot could be (never read whole)."""
    try:
        return hashlib.sha256(load_whole(repo.backend, key, "key slot", size=size)).hexdigest()
    except OversizedObject:
        return None


def _describe_lock(key: str, raw: bytes, mtime: float) -> str:
    since = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
    try:
        doc = json.loads(raw)
        holder = f"host {doc['host']} pid {doc['pid']}"
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        holder = "an unreadable holder"
    what = "prune lease" if key == LEASE_KEY else "lock object"
    return f"{what} held by {holder} since {since}; it blocks prune only, never backup or restore"
