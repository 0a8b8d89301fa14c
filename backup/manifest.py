"""The signed repository manifest: what a complete repository state is, verifiable without keys.

Content-hash names let anyone check that an object is intact, but not that the *set* of
objects is the one the primary committed: storage (or whoever controls it) could delete the
newest snapshots (truncation), put back an older set (rollback) or plant snapshot objects
that prune had removed. Borg guards against replay with a manifest timestamp, but checking it
needs the key. Here the primary signs, with Ed25519, a manifest of its committed state:

* a sequence number that only grows (``max(previous + 1, unix milliseconds)``, so it stays
  monotonic even if the stored manifest is lost or tampered with);
* every snapshot id with its time and system (the offsite computes replication lag per
  system from it, without keys);
* every index file, with the SHA-256 of the sorted set, and every pack those indexes name,
  with its size, so a keyless verifier knows exactly which objects the snapshots need;
* the SHA-256 of ``config`` and of each genuine key slot, which are not content-addressed.
  "Genuine" is what a key holder vouches for: the slots the previous manifest signed (still
  with the same bytes), the slot this session unlocked with and the slots it added. A slot
  planted under ``keys/`` since is never signed in passing by the next backup; unlocking tries
  signed slots first (:mod:`backup.keys`), and ``check`` / ``key list`` name the unsigned ones;
* the snapshots retention removed in the last :data:`REMOVED_KEPT`, each with the time the
  primary signed it away.

The last item exists for the offsite's delayed deletion. Replication keeps what the primary
removed for a delete delay (and Object Lock may keep it longer), so for that time the offsite
holds snapshots the current manifest no longer lists. Without a signed word on them the
keyless verifier could not tell them from planted ones. The removal list is that word, in
the one object the verifier already trusts: a snapshot at the offsite that is in neither
list was never signed (planted or forged); one in the removal list is retention's, kept
for the delay. Older signed manifests would say the same but exist offsite only where the
bucket keeps versions; the list works on every backend, costs about 100 bytes per removed
snapshot, and ages out after :data:`REMOVED_KEPT` (longer than any sensible delete delay
or Object Lock period; a snapshot kept offsite longer is reported as unsigned again).

The signing key is derived from the master key (HKDF, bound to the repository id), so only
key holders can sign and every key holder derives the same key; the public key is pinned at
the offsite (site configuration, or on first replication) and any later manifest must verify
with it. The offsite learns snapshot times and system ids — metadata it could largely infer
from object timestamps anyway — and nothing about content.

:func:`sign_manifest` runs whenever a repository opened with
:func:`~backup.opening.open_repository` closes after a change to the committed state (a
snapshot commit, ``forget``, ``prune``, key-slot changes), so no command can forget it.
``forget`` also signs before it removes anything (``without``), so that no reader finds a
snapshot the stored manifest signs missing while it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backup.chainsign import State, extend_chain
from backup.crypto import MasterKey
from backup.errors import CorruptObject
from backup.manifestchain import CHAIN_VERSION, Link, check_signed, link_reader, load_signed, resolve, verify_link
from backup.manifestmemo import ManifestMemo
from backup.manifeststate import (
    FORMAT,
    MALFORMED,
    MANIFEST_KEY,
    REMOVED_KEPT,
    VERSION,
    Journal,
    Manifest,
    ManifestInvalid,
    RemovedSnapshot,
    SnapshotEntry,
    index_set_digest,
    refuse_newer,
)
from backup.objectsize import refuse_oversized
from backup.pack import pack_key
from backup.repository import Repository
from backup.slotformat import KEYS_PREFIX
from backup.slotorder import NO_SIGNED_SLOTS, SignedSlots
from backup.slotscan import slot_digests
from backup.snapshot import load_snapshot, snapshot_ids
from dc.errors import N_, Message
from storage.backend import Backend
from storage.errors import ObjectNotFound, StorageError

_SIGNING_INFO = b"bcpctl/v1/manifest-signing"
_DOMAIN = b"bcpctl/v1/manifest\n"


def signing_key(master: MasterKey, repo_id: str) -> Ed25519PrivateKey:
    """The repository's manifest signing key: HKDF of the master key, bound to the repository id."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes.fromhex(repo_id), info=_SIGNING_INFO).derive(
        master.encryption
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def encode_signed(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    body = manifest.body()
    signature = key.sign(_DOMAIN + body)
    doc = {"format": FORMAT, "body": body.decode(), "signature": signature.hex()}
    return json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n"


def _parse_body(doc: dict[str, Any], where: str) -> Manifest:
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError("not a version 1 bcpctl manifest")
    snapshots = tuple(SnapshotEntry(str(s["id"]), str(s["time"]), s.get("system")) for s in doc["snapshots"])
    removed = tuple(RemovedSnapshot(str(r["id"]), str(r["removed"]), r.get("system")) for r in doc.get("removed", ()))
    for entry_id, when in [(e.id, e.time) for e in snapshots] + [(r.id, r.removed) for r in removed]:
        bytes.fromhex(entry_id)
        if datetime.fromisoformat(when).tzinfo is None:
            raise ValueError("snapshot time without a time zone")
    manifest = Manifest(
        repository=str(doc["repository"]),
        sequence=int(doc["sequence"]),
        time=str(doc["time"]),
        public_key=str(doc["public_key"]),
        config_sha256=str(doc["config_sha256"]),
        keys={str(k): str(v) for k, v in doc["keys"].items()},
        snapshots=snapshots,
        indexes=tuple(str(n) for n in doc["indexes"]),
        index_set_sha256=str(doc["index_set_sha256"]),
        packs={str(k): int(v) for k, v in doc["packs"].items()},
        removed=removed,
    )
    if index_set_digest(manifest.indexes) != manifest.index_set_sha256:
        raise ValueError("index set hash does not match the index list")
    if not all(k.startswith(("data/", "meta/")) for k in manifest.packs):
        raise ValueError("a pack key outside data/ and meta/")
    return manifest


def verify_manifest(
    raw: bytes,
    *,
    public_key: str | None,
    repo_id: str | None,
    where: str = MANIFEST_KEY,
    load: Callable[[str], bytes] | None = None,
    accepted: tuple[int, str] | None = None,
) -> Manifest:
    """Parse and verify a stored manifest, format 1 or 2; no repository key needed.

    ``public_key`` is the pinned key (hex); ``None`` accepts the key the manifest names, which
    only the caller may decide to do (first use). A format-2 head is resolved through its chain
    with ``load`` (the storage's reader; :mod:`backup.manifestchain`), and must descend from
    ``accepted`` (sequence, SHA-256 of the manifest accepted last) when given.
    Raises :class:`ManifestInvalid`.
    """
    head = verify_signed(raw, public_key=public_key, repo_id=repo_id, where=where)
    if isinstance(head, Manifest):
        return head
    if load is None:
        raise ManifestInvalid(N_("{where} is a format 2 manifest: its chain is not readable here"), where=where)
    return resolve(head, load, accepted=accepted)


def verify_signed(raw: bytes, *, public_key: str | None, repo_id: str | None, where: str) -> Manifest | Link:
    """The stored manifest verified by itself: a format-1 manifest, or a format-2 head not yet resolved."""
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError("not a bcpctl manifest")
        body = str(doc["body"]).encode()
        parsed = json.loads(body)  # once: a format-1 body is 16 MB at 116,000 snapshots
        refuse_newer(parsed, where)
        if isinstance(parsed, dict) and parsed.get("version") == CHAIN_VERSION:
            return verify_link(raw, public_key=public_key, repo_id=repo_id, where=where)
        signature = bytes.fromhex(str(doc["signature"]))
        manifest = _parse_body(parsed, where)
        embedded = Ed25519PublicKey.from_public_bytes(bytes.fromhex(manifest.public_key))
    except MALFORMED as exc:
        raise ManifestInvalid(N_("{where} is malformed or truncated ({exc})"), where=where, exc=exc) from None
    check_signed(
        where, embedded, signature, _DOMAIN + body, signer=manifest.public_key, repository=manifest.repository,
        public_key=public_key, repo_id=repo_id,
    )  # fmt: skip
    return replace(manifest, digest=hashlib.sha256(raw).hexdigest())


def load_manifest_bytes(backend: Backend) -> bytes:
    """The stored manifest's bytes, if their size is one a genuine manifest can have.

    The manifest is the one object rewritten in place (each signature replaces it whole), so a
    read can race a new signature: one shorter than the size just seen leaves the read short,
    one longer is read as its first bytes only. Either way the size differs afterwards: read
    the new one.
    """
    size = backend.stat(MANIFEST_KEY).size
    for attempt in range(3):
        try:
            raw = load_signed(backend, MANIFEST_KEY, "manifest", size=size)
        except ObjectNotFound:
            raise
        except StorageError:
            newer = backend.stat(MANIFEST_KEY).size
            if newer == size or attempt == 2:
                raise
            size = newer
            continue
        try:
            newer = backend.stat(MANIFEST_KEY).size
        except ObjectNotFound:
            return raw
        if newer == size or attempt == 2:
            return raw
        size = newer
    raise AssertionError("the loop returns or raises")


def read_manifest(backend: Backend, *, public_key: str | None, repo_id: str | None) -> Manifest | None:
    """The verified manifest of ``backend``, or ``None`` if it has none."""
    try:
        raw = load_manifest_bytes(backend)
    except ObjectNotFound:
        return None
    where = f"{backend.url}/{MANIFEST_KEY}"
    return verify_manifest(raw, public_key=public_key, repo_id=repo_id, where=where, load=link_reader(backend))


def signed_slots(backend: Backend, repo_id: str, pinned: str | None) -> SignedSlots:
    """The key slots the stored manifest signs, to try first when unlocking (no key needed)."""
    return slots_of(signed_head(backend, repo_id, pinned), pinned)


def signed_head(backend: Backend, repo_id: str, pinned: str | None) -> Manifest | Link | None:
    """The stored manifest verified by itself — with ``pinned``, or without a pin with the key it
    names — or ``None`` if there is none that verifies (its chain is not walked: key slots are
    signed in every link)."""
    try:
        return verify_signed(load_manifest_bytes(backend), public_key=pinned, repo_id=repo_id, where=MANIFEST_KEY)
    except (ObjectNotFound, StorageError, ManifestInvalid):
        return None


def slots_of(head: Manifest | Link | None, pinned: str | None) -> SignedSlots:
    """The slots ``head`` (:func:`signed_head`) signs: trusted when it verified with ``pinned``.

    Without a pin, a manifest that verifies with its own key is a hint. With a pin it does not
    verify with, it is forged: ignored (:func:`signed_head` gave ``None``).
    """
    if head is None:
        return NO_SIGNED_SLOTS
    return SignedSlots(trusted=head.keys, verified=True) if pinned is not None else SignedSlots(hinted=head.keys)


def _genuine_slots(repo: Repository, previous: Manifest | Link | None) -> dict[str, str]:
    """``keys/<id>`` → SHA-256 of the slots a key holder vouches for (see the module docstring).

    Without a previous manifest (a new repository, or one whose manifest is lost or damaged)
    there is nothing to carry forward, and every well-formed slot present is adopted: dropping
    genuine slots from the signed set would make them look planted.
    """
    present = slot_digests(repo.backend)
    if previous is None:
        return present
    vouched = {KEYS_PREFIX + repo.slot_id, *(KEYS_PREFIX + slot for slot in repo.added_slots)}
    return {key: digest for key, digest in present.items() if key in vouched or previous.keys.get(key) == digest}


def sign_manifest(
    repo: Repository,
    *,
    now: datetime | None = None,
    without: frozenset[str] = frozenset(),
    memo: ManifestMemo[Manifest | Link] | None = None,
    journal: Journal | None = None,
    chain: bool | None = None,
    checkpoint: bool = False,
) -> Manifest | Link:
    """Sign and store the manifest of ``repo``'s current committed state; return it.

    Format 1 lists the whole state. Listing order matters because backups run without a lock:
    snapshots are listed first, then indexes, then packs — each layer was written before the
    one above it, so every listed snapshot's indexes and packs are already visible. A snapshot
    committed while this runs is simply signed by the next call.

    Format 2 (``chain``; ``None`` keeps the stored manifest's format) signs a link holding what
    ``journal`` (default: the repository's own) noted since the last signature, or, with
    ``checkpoint``, the whole state (:mod:`backup.chainsign`); it returns the link.

    ``without``: snapshots about to be removed (forget signs their removal before it removes
    them, so no reader ever finds a signed snapshot missing).

    ``memo``: a long-running process's memory of the manifest it signed last
    (:mod:`backup.manifestmemo`), which spares re-verifying stored bytes it wrote itself.
    """
    now = now or datetime.now(UTC)
    key = signing_key(repo.master, repo.config.id)
    own = public_key_hex(key)
    backend = repo.backend
    journal = repo.journal if journal is None else journal
    stored = _previous(backend, own, repo.config.id, memo)
    signed: Manifest | Link
    if chain or (chain is None and isinstance(stored, Link)):
        signed = extend_chain(
            backend,
            key,
            stored,
            own=own,
            repo_id=repo.config.id,
            config_sha256=hashlib.sha256(repo.config_raw).hexdigest(),
            now=now,
            journal=journal,
            without=without,
            checkpoint=checkpoint,
            keys_for=lambda head: _genuine_slots(repo, head),
            state_for=lambda previous: _whole_state(repo, previous, without, now),
        )
    else:
        previous = resolve(stored, link_reader(backend)) if isinstance(stored, Link) else stored
        entries, indexes, packs, removed = _whole_state(repo, previous, without, now)
        manifest = Manifest(
            repository=repo.config.id,
            sequence=max((previous.sequence + 1) if previous else 1, int(now.timestamp() * 1000)),
            time=now.isoformat(timespec="seconds"),
            public_key=own,
            config_sha256=hashlib.sha256(repo.config_raw).hexdigest(),
            keys=_genuine_slots(repo, previous),
            snapshots=entries,
            indexes=indexes,
            index_set_sha256=index_set_digest(indexes),
            packs=packs,
            removed=removed,
        )
        raw = encode_signed(manifest, key)
        refuse_oversized(Message(N_("the repository manifest")), "manifest", len(raw))
        backend.save(MANIFEST_KEY, raw)
        signed = replace(manifest, digest=hashlib.sha256(raw).hexdigest())
    repo.state_changed = False
    journal.clear()
    if isinstance(signed, Link):
        # stored now: whatever this process writes next is later
        repo.journal.seen, repo.journal.seen_digest = signed.position, signed.digest
    if memo is not None:
        memo.remember(backend.url, signed)
    return signed


def _whole_state(repo: Repository, previous: Manifest | None, without: frozenset[str], now: datetime) -> State:
    """Every snapshot, index file and pack of ``repo`` and the removal list since ``previous``."""
    listed = set(snapshot_ids(repo)) - without
    # in the previous manifest's order, so the sort below finds one run already sorted
    entries = [e for e in previous.snapshots if e.id in listed] if previous else []
    for snapshot_id in sorted(listed - {e.id for e in entries}):
        try:
            snapshot = load_snapshot(repo, snapshot_id)
        except (ObjectNotFound, CorruptObject):
            continue  # forgotten meanwhile, or damaged: never sign what does not authenticate
        entries.append(SnapshotEntry(snapshot_id, snapshot.time.isoformat(), snapshot.system))
    repo.sync_index()
    indexes = tuple(sorted(repo.cache.index_files()))
    packs = {pack_key(name, blob_type): size for name, blob_type, size in repo.cache.packs()}
    removed = removed_since(previous, {e.id for e in entries}, now) if previous else ()
    # what forget removes may never have been signed, so no earlier state names it: listed all
    # the same, in format 1 too, so that the upgrade's checkpoint carries it to a format-2 signer
    # holding it unsigned (backup/chainsign.py ``_signed_away``)
    listed_away = {r.id for r in removed}
    when = now.isoformat(timespec="seconds")
    removed += tuple(RemovedSnapshot(i, when, None) for i in sorted(without) if i not in listed_away)
    return tuple(sorted(entries, key=lambda e: (e.time, e.id))), indexes, packs, removed


def _previous(
    backend: Backend, own: str, repo_id: str, memo: ManifestMemo[Manifest | Link] | None
) -> Manifest | Link | None:
    """The stored manifest a signature carries forward (a format-2 head unresolved); ``None`` if none verifies."""
    try:
        raw = load_manifest_bytes(backend)
        remembered = memo.recall(backend.url, repo_id, own, hashlib.sha256(raw).hexdigest()) if memo else None
        return remembered or verify_signed(raw, public_key=own, repo_id=repo_id, where=f"{backend.url}/{MANIFEST_KEY}")
    except ObjectNotFound:
        return None
    except ManifestInvalid:
        return None  # tampered or foreign: the clock-based sequence still moves forward


def removed_since(previous: Manifest, current: set[str], now: datetime) -> tuple[RemovedSnapshot, ...]:
    """The removal list of the next manifest: the previous one's, younger than
    :data:`REMOVED_KEPT`, plus what the previous manifest signed and ``current`` lacks."""
    kept = [
        r for r in previous.removed if r.id not in current and now - datetime.fromisoformat(r.removed) < REMOVED_KEPT
    ]
    # one set, built once: testing each entry against ``current | known`` rebuilt the union per
    # entry, quadratic in the snapshot count (18 s per backup at 15,000 snapshots; issue 23)
    present = current | {r.id for r in kept}
    when = now.isoformat(timespec="seconds")
    kept += [RemovedSnapshot(e.id, when, e.system) for e in previous.snapshots if e.id not in present]
    return tuple(kept)


def repository_public_key(repo: Repository) -> str:
    """The hex public key an offsite site pins for ``repo`` (``bcpctl manifest key``)."""
    return public_key_hex(signing_key(repo.master, repo.config.id))
