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
import time
from datetime import UTC, datetime

from backup.checkreport import REPAIR_INDEX, CheckReport, Problem
from backup.checkview import CheckView
from backup.layout import TOMBSTONE_PREFIX, place_of
from backup.locks import held_by_someone
from backup.manifest import (
    MANIFEST_KEY,
    Manifest,
    ManifestInvalid,
    read_manifest,
    repository_public_key,
    verify_manifest,
)
from backup.manifestchain import link_reader
from backup.objectsize import OversizedObject, load_whole
from backup.prune import LEASE_KEY
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.slotformat import KEYS_PREFIX
from backup.slotscan import slot_digests
from dc.errors import N_, BcpError, Message, message_of
from storage.errors import ObjectNotFound


def check_inventory(repo: Repository, view: CheckView, superseded: set[str], report: CheckReport) -> None:
    """``superseded``: index files a present index file replaces (prune deletes those)."""
    listing = view.listing
    _check_manifest(repo, view, superseded, report)
    for key in sorted(listing):
        place = place_of(key)
        if place.kind == "tombstone":
            try:
                repo.load_sealed(TOMBSTONE_PREFIX, "tombstone", place.name)
            except ObjectNotFound:
                continue  # prune finished its delete phase while we looked
            except BcpError as exc:
                report.problems.append(
                    Problem(
                        key,
                        Message(N_("{reason}; prune refuses to run while it is unreadable"), reason=message_of(exc)),
                    )
                )
        elif place.kind == "lock":
            try:
                raw = load_whole(repo.backend, key, "lock", size=listing[key].size)
            except OversizedObject as exc:
                report.problems.append(Problem(key, message_of(exc)))
                continue
            except BcpError:
                continue  # released while we looked
            report.notes.append(Problem(key, _describe_lock(key, raw, listing[key].mtime)))
        elif place.kind is None:
            report.notes.append(Problem(key, Message(N_("not a bcpctl object (a stray file?); nothing reads it"))))


def _check_manifest(repo: Repository, view: CheckView, superseded: set[str], report: CheckReport) -> None:
    """The view's manifest was read before anything was listed, so everything it signs was
    listed unless it was removed since. forget signs a removal before it removes; prune
    removes, then signs, and a newer manifest that no longer signs what is missing tells
    such a removal from damage."""
    listing = view.listing
    snapshot_keys = sorted(k for k in listing if k.startswith(SNAPSHOT_PREFIX))
    if repo.state_changed:
        # This very session changed the repository; it signs the new state when it closes.
        report.notes.append(
            Problem(MANIFEST_KEY, Message(N_("not compared: this session's changes are signed when it closes")))
        )
        return
    if view.manifest is None and view.manifest_error is None:
        if snapshot_keys:
            report.problems.append(
                Problem(
                    MANIFEST_KEY,
                    Message(
                        N_(
                            "the signed manifest is missing (deleted?); the offsite cannot verify "
                            "this repository until the next backup, forget or prune signs a new one"
                        )
                    ),
                )
            )
        return
    if view.manifest is None:
        report.problems.append(Problem(MANIFEST_KEY, view.manifest_error or Message(N_("unreadable"))))
        return
    try:
        manifest = verify_manifest(
            view.manifest,
            public_key=repository_public_key(repo),
            repo_id=repo.config.id,
            load=link_reader(repo.backend),
        )
    except ManifestInvalid as exc:
        report.problems.append(Problem(MANIFEST_KEY, message_of(exc)))
        return
    now = _SignedNow(repo, manifest)
    for entry in manifest.snapshots:
        key = SNAPSHOT_PREFIX + entry.id
        if key not in listing and entry.id in now.manifest().snapshot_ids:
            report.problems.append(
                Problem(
                    key,
                    Message(
                        N_(
                            "snapshot of {time} (system {system}) is signed by the manifest but "
                            "missing (deleted outside bcpctl?)"
                        ),
                        time=entry.time,
                        system=entry.system,
                    ),
                )
            )
            report.affected_snapshots.append(entry.id)
    for key in snapshot_keys:
        if key.removeprefix(SNAPSHOT_PREFIX) not in manifest.snapshot_ids:
            report.notes.append(
                Problem(
                    key,
                    Message(
                        N_(
                            "not yet signed: committed after the last signature (by a process still "
                            "running, or one that died before signing: the next checkpoint, prune or "
                            "'manifest sign', signs it); replication does not copy it meanwhile"
                        )
                    ),
                )
            )
    for name in manifest.indexes:
        key = "index/" + name
        if key not in listing and name not in superseded and name in now.manifest().indexes:
            if now.pruning:
                report.notes.append(
                    Problem(
                        key,
                        Message(N_("removed by a prune still running, not yet signed away: run check again after it")),
                    )
                )
                continue
            report.problems.append(
                Problem(
                    key,
                    Message(
                        N_("index file signed by the manifest is missing (deleted?); '{command}' rebuilds it"),
                        command=REPAIR_INDEX,
                    ),
                )
            )
            report.suggest(REPAIR_INDEX)
    if hashlib.sha256(repo.config_raw).hexdigest() != manifest.config_sha256:
        report.problems.append(Problem("config", Message(N_("config differs from the signed manifest"))))
    for key, digest in sorted(manifest.keys.items()):
        gone = key not in listing
        stored: str | None = None
        if not gone:
            try:
                stored = _slot_digest(repo, key, listing[key].size)
            except ObjectNotFound:
                gone = True
            except BcpError as exc:
                report.problems.append(Problem(key, message_of(exc)))
                continue
        if gone:
            if key in now.manifest().keys:  # else a key command removed it and signed while check ran
                report.problems.append(
                    Problem(key, Message(N_("key slot signed by the manifest is missing (deleted?)")))
                )
        elif stored != digest:
            report.problems.append(
                Problem(key, Message(N_("key slot differs from the signed manifest (damaged or replaced)")))
            )
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


class _SignedNow:
    """The manifest stored now, to ask whether it still signs something the view's manifest signed.

    Read once, and only when something signed is missing: a newer manifest that no longer
    signs it means a forget or prune removed it and committed while check ran. Prune removes
    superseded index files before it signs their removal, so while a prune holds its lease the
    stored manifest may still sign what it just removed: check waits for the prune (up to
    ``PRUNE_WAIT_SECONDS``) before reading, and says so when it is still running.
    """

    def __init__(self, repo: Repository, seen: Manifest) -> None:
        self._repo = repo
        self._seen = seen
        self._current = seen
        self._read = False
        #: a prune still held its lease when the manifest was read
        self.pruning = False

    def manifest(self) -> Manifest:
        if not self._read:
            self._read = True
            self.pruning = wait_for_prune(self._repo)
            try:
                current = read_manifest(
                    self._repo.backend, public_key=self._seen.public_key, repo_id=self._repo.config.id
                )
            except (ManifestInvalid, BcpError):
                current = None  # damaged since: the view's manifest is the one that verified
            if current is not None and current.sequence > self._seen.sequence:
                self._current = current
        return self._current


#: how long check waits for a running prune to sign what it removed
PRUNE_WAIT_SECONDS = 30.0


def wait_for_prune(repo: Repository) -> bool:
    """Wait while a prune holds its lease; True when it still does after the wait."""
    deadline = time.monotonic() + PRUNE_WAIT_SECONDS
    while held_by_someone(repo.backend, LEASE_KEY):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.2)
    return False


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
