"""Whether the source's state may be replicated: the signed manifest against what is pinned.

The threat is storage-level: whoever controls the primary's storage (or the path to it) but
not the repository key can delete the newest snapshots, put back an older manifest, or plant
snapshot objects that prune had removed. Each is refused here before anything is written:

* once a key is pinned (site config, or the first replication), a source without a manifest
  or with one that does not verify with that key is refused;
* a sequence lower than the highest ever accepted — remembered in the control database and
  on the target — is a rollback. Two different manifests under one sequence are accepted:
  both verify with the pinned key, so they come from key holders (two backups signing in the
  same millisecond); only a key holder could forge one, and such a one could as well sign N+1;
* config and key slots must hash to what the manifest signs (they are not content-addressed).

Truncation (a manifest naming objects neither site holds) is checked against the listings in
:func:`replication.plan.missing_referenced`; such a manifest is not refused outright but held
back, with the rest of the run still copied (:mod:`replication.holdback`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from backup.manifest import MANIFEST_KEY, Manifest, ManifestInvalid, verify_manifest
from backup.manifestchain import link_key, link_reader, verify_link
from dc.errors import N_
from replication.errors import ManifestRefused
from replication.records import Pin
from storage.backend import Backend
from storage.errors import ObjectNotFound


def load_optional(backend: Backend, key: str) -> bytes | None:
    try:
        return backend.load(key)
    except ObjectNotFound:
        return None


def either_reader(first: Callable[[str], bytes], second: Callable[[str], bytes]) -> Callable[[str], bytes]:
    """Read from ``first``, else from ``second``: links the source pruned are still held by the target."""

    def load(key: str) -> bytes:
        try:
            return first(key)
        except ObjectNotFound:
            return second(key)

    return load


def accept_manifest(
    source: Backend,
    target_raw: bytes | None,
    repo_id: str,
    config_raw: bytes,
    pin: Pin | None,
    pinned_key: str | None,
    target_load: Callable[[str], bytes] | None = None,
) -> tuple[Manifest | None, bytes | None, Manifest | None]:
    """The source's manifest if it may be replicated, the raw bytes, and the target's current one.

    ``target_raw``: the manifest the target holds now (read by the caller, with its other reads).

    Refuses (``ManifestRefused``) a missing manifest once a key is pinned, a signature that
    does not verify with the pinned key, a sequence lower than one already accepted
    (rollback), and a config
    or key slot that differs from what the manifest signs.
    """
    where = f"{source.url}/{MANIFEST_KEY}"
    raw = load_optional(source, MANIFEST_KEY)
    if raw is None:
        if pinned_key:
            raise ManifestRefused(
                N_(
                    "{url} has no signed manifest, but repository {repo_id} is pinned to manifest key "
                    "{pinned_key}…: refusing to replicate an unverifiable state"
                ),
                url=source.url,
                repo_id=repo_id[:8],
                pinned_key=pinned_key[:16],
            )
        return None, None, None
    try:
        manifest = verify_manifest(raw, public_key=pinned_key, repo_id=repo_id, where=where, load=link_reader(source))
    except ManifestInvalid as exc:
        raise ManifestRefused(N_("refusing {message_}"), message_=exc) from None
    if manifest.config_sha256 != hashlib.sha256(config_raw).hexdigest():
        raise ManifestRefused(N_("the config at {url} differs from the one its signed manifest names"), url=source.url)
    for key, digest in manifest.keys.items():
        slot = load_optional(source, key)
        if slot is not None and hashlib.sha256(slot).hexdigest() != digest:
            raise ManifestRefused(
                N_("key slot {key} at {url} differs from the signed manifest (tampered)"), key=key, url=source.url
            )
    current = None
    if target_raw is not None:
        try:
            # a format-2 head's links were copied with it; the source may have pruned old ones since
            load = either_reader(link_reader(source), target_load) if target_load is not None else link_reader(source)
            current = verify_manifest(target_raw, public_key=manifest.public_key, repo_id=repo_id, load=load)
        except ManifestInvalid:
            current = None  # the target's copy is damaged; the verifier reports it, this run replaces it
    floor = max(pin.sequence if pin else 0, current.sequence if current else 0)
    if manifest.sequence < floor:
        raise ManifestRefused(
            N_(
                "refusing a rolled-back manifest at {url}: sequence {sequence} is older than {floor}, "
                "already replicated"
            ),
            url=source.url,
            sequence=manifest.sequence,
            floor=floor,
        )
    return manifest, raw, current


def links_to_put_back(
    source: Backend, target: Backend, manifest: Manifest, current: Manifest | None, held: set[str]
) -> dict[str, str]:
    """Links the target holds for positions this run commits whose bytes are not the primary's:
    ``{key: SHA-256 of the source's signed link}``, to copy over them.

    Positions are claimed once at the primary, so before this run the target can hold a link
    after its accepted head only from an interrupted run (the same bytes) or from someone who
    can write the offsite but not sign: bytes at the predictable next position, of any size —
    a delta's size is easy to guess — which a plan comparing sizes keeps, and verification then
    refuses for good. Each is compared by its bytes, and replaced only by a source link that
    verifies with the manifest's key at its own position.
    """
    first = current.position + 1 if current is not None and current.position else 1
    source_load, target_load = link_reader(source), link_reader(target)
    wanted = {}
    for position in range(first, manifest.position + 1):
        key = link_key(position)
        if key not in held:
            continue
        try:
            raw = source_load(key)
            if target_load(key) == raw:
                continue
            link = verify_link(raw, public_key=manifest.public_key, repo_id=manifest.repository, where=key)
        except (ObjectNotFound, ManifestInvalid):
            continue  # the plan or the verification names what is wrong with the source's own
        if link.position == position:
            wanted[key] = hashlib.sha256(raw).hexdigest()
    return wanted
