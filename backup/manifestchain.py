"""Format 2 of the signed manifest: a chain of signed links, each the delta of one signature.

Format 1 (:mod:`backup.manifest`) restates the whole committed state at every signature, so a
signature costs the repository's size (1.2 s at 116,000 snapshots; ``docs/scale.md``). A
format-2 signature signs only what changed since the previous one:

* a *link* ``manifests/<position>`` (12 digits) is signed with the repository's manifest key
  and names ``previous``, the SHA-256 of the stored bytes of the link before it — so the links
  form one hash chain, and the one ``manifest`` object is a copy of the newest link (the head);
* a *delta* link carries the snapshots its signer committed (id, time, system), the snapshots
  ``forget`` removed, and the index files written with the packs they name (with sizes), as
  its process noted them (:class:`backup.manifeststate.Journal`): no listing of ``snapshots/``;
* a *checkpoint* link carries the whole state, format 1's fields: written by ``prune`` and
  ``repair`` (which change packs wholesale), at the upgrade from format 1, and after
  :data:`CHECKPOINT_EVERY` links, so what a reader replays stays bounded;
* a link's position is claimed with a create-if-absent write: two signers never sign two
  different links at one position; the one that loses reads the winner and signs after it;
* links no verification reads any more are removed by prune (:mod:`backup.chainprune`).

A keyless reader verifies the head with the pinned key, walks ``previous`` back to the newest
checkpoint (and on to the checkpoint before it, to check the newer one against the deltas
between them), verifies every link's signature and hash, and replays the deltas forward.
What ``verify-offsite`` proves is unchanged — every snapshot the primary signed is present and
unaltered, nothing added, removed or rolled back undetected — and the chain adds one thing:
the head must descend from the head the offsite accepted last (a fork otherwise). Each way a
chain can be wrong is one line naming the link (:func:`resolve`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backup.manifeststate import (
    FORMAT,
    MALFORMED,
    REMOVED_KEPT,
    Manifest,
    ManifestInvalid,
    RemovedSnapshot,
    SnapshotEntry,
    index_set_digest,
    link_key,
    refuse_newer,
)
from backup.objectsize import OversizedObject, load_whole
from dc.errors import N_
from storage.backend import Backend
from storage.errors import ObjectNotFound

CHAIN_VERSION = 2
#: links after a checkpoint before the next signature writes a new one (a day at one a minute)
CHECKPOINT_EVERY = 1440
_DOMAIN = b"bcpctl/v2/manifest-link\n"


@dataclass(frozen=True)
class Link:
    """One signed link. ``full``: a checkpoint (the whole state); otherwise a delta."""

    repository: str
    sequence: int
    time: str
    public_key: str
    config_sha256: str
    keys: dict[str, str]
    position: int
    #: SHA-256 of the stored bytes of the link (or format-1 manifest) this one extends; "" for none
    previous: str
    #: position of the checkpoint in effect (this link's own for a checkpoint)
    checkpoint: int
    full: bool
    #: a checkpoint's whole state, or a delta's additions
    snapshots: tuple[SnapshotEntry, ...] = ()
    indexes: tuple[str, ...] = ()
    packs: dict[str, int] = field(default_factory=dict)
    #: a checkpoint's removal list, or the snapshots a delta removes
    removed: tuple[RemovedSnapshot, ...] = ()
    digest: str = field(default="", compare=False)

    def body(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": CHAIN_VERSION,
            "repository": self.repository,
            "sequence": self.sequence,
            "time": self.time,
            "public_key": self.public_key,
            "config_sha256": self.config_sha256,
            "keys": dict(sorted(self.keys.items())),
            "position": self.position,
            "previous": self.previous,
            "checkpoint": self.checkpoint,
            "full": self.full,
            "snapshots": [{"id": e.id, "time": e.time, "system": e.system} for e in self.snapshots],
            "indexes": list(self.indexes),
            "packs": dict(sorted(self.packs.items())),
            "removed": [{"id": r.id, "removed": r.removed, "system": r.system} for r in self.removed],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_reader(backend: Backend) -> Callable[[str], bytes]:
    """``backend``'s reader of links for :func:`walk`: each read bounded like every object read whole.

    Whoever can write the storage can leave a link of many gigabytes (a sparse file costs no
    disk); it is named as a damaged link, never read (:mod:`backup.objectsize`).
    """

    return lambda key: load_signed(backend, key, "manifest link")


def load_signed(backend: Backend, key: str, kind: str, *, size: int | None = None) -> bytes:
    """A manifest or link read whole after its size is checked; one too large is a :class:`ManifestInvalid`."""
    try:
        return load_whole(backend, key, kind, size=size)
    except OversizedObject as exc:
        raise ManifestInvalid(exc.template, **exc.params) from None


def encode_link(link: Link, key: Ed25519PrivateKey) -> bytes:
    body = link.body()
    doc = {"format": FORMAT, "body": body.decode(), "signature": key.sign(_DOMAIN + body).hex()}
    return json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n"


def _parse(body: bytes) -> Link:
    doc = json.loads(body)
    if doc.get("format") != FORMAT or doc.get("version") != CHAIN_VERSION:
        raise ValueError("not a format 2 bcpctl manifest link")
    snapshots = tuple(SnapshotEntry(str(s["id"]), str(s["time"]), s.get("system")) for s in doc["snapshots"])
    removed = tuple(RemovedSnapshot(str(r["id"]), str(r["removed"]), r.get("system")) for r in doc["removed"])
    for entry_id, when in [(e.id, e.time) for e in snapshots] + [(r.id, r.removed) for r in removed]:
        bytes.fromhex(entry_id)
        if datetime.fromisoformat(when).tzinfo is None:
            raise ValueError("snapshot time without a time zone")
    link = Link(
        repository=str(doc["repository"]),
        sequence=int(doc["sequence"]),
        time=str(doc["time"]),
        public_key=str(doc["public_key"]),
        config_sha256=str(doc["config_sha256"]),
        keys={str(k): str(v) for k, v in doc["keys"].items()},
        position=int(doc["position"]),
        previous=str(doc["previous"]),
        checkpoint=int(doc["checkpoint"]),
        full=bool(doc["full"]),
        snapshots=snapshots,
        indexes=tuple(str(n) for n in doc["indexes"]),
        packs={str(k): int(v) for k, v in doc["packs"].items()},
        removed=removed,
    )
    if link.position < 1 or not (
        link.checkpoint == link.position if link.full else 1 <= link.checkpoint < link.position
    ):
        raise ValueError("inconsistent chain position")
    if not all(k.startswith(("data/", "meta/")) for k in link.packs):
        raise ValueError("a pack key outside data/ and meta/")
    return link


def verify_link(raw: bytes, *, public_key: str | None, repo_id: str | None, where: str) -> Link:
    """Parse one stored link and verify its signature (``public_key`` ``None``: its own, first use)."""
    try:
        doc = json.loads(raw)
        body = str(doc["body"]).encode()
        signature = bytes.fromhex(str(doc["signature"]))
        refuse_newer(json.loads(body), where)
        link = _parse(body)
        embedded = Ed25519PublicKey.from_public_bytes(bytes.fromhex(link.public_key))
    except MALFORMED as exc:
        raise ManifestInvalid(N_("{where} is malformed or truncated ({exc})"), where=where, exc=exc) from None
    check_signed(
        where, embedded, signature, _DOMAIN + body, signer=link.public_key, repository=link.repository,
        public_key=public_key, repo_id=repo_id,
    )  # fmt: skip
    return replace(link, digest=hashlib.sha256(raw).hexdigest())


def chained_link(raw: bytes, *, digest: str, position: int, next_position: int) -> Link:
    """The link at ``position`` stored as ``raw``, if its SHA-256 is ``digest``: the ``previous`` of
    a verified link (at ``next_position``), whose signature covers it.

    Those are the bytes that link's signer chained to, so their own signature needs no second
    check (an Ed25519 verification is ~80% of the CPU of reading a link). Any other bytes raise
    :class:`ManifestInvalid`, as does a link naming another position.
    """
    key = link_key(position)
    if hashlib.sha256(raw).hexdigest() != digest:
        raise ManifestInvalid(
            N_("{key}: link {position} is not the one link {next} was signed over (replaced, reordered or forked)"),
            key=key,
            position=position,
            next=next_position,
        )
    try:
        link = _parse(str(json.loads(raw)["body"]).encode())
    except MALFORMED as exc:
        raise ManifestInvalid(N_("{where} is malformed or truncated ({exc})"), where=key, exc=exc) from None
    if link.position != position:
        raise ManifestInvalid(
            N_("{key} holds link {position} (moved, reordered or replayed)"), key=key, position=link.position
        )
    return replace(link, digest=digest)


def check_signed(
    where: str,
    embedded: Ed25519PublicKey,
    signature: bytes,
    message: bytes,
    *,
    signer: str,
    repository: str,
    public_key: str | None,
    repo_id: str | None,
) -> None:
    """What every stored manifest (format 1 or a format-2 link) must pass once parsed: signed by
    the pinned key (if one is pinned), the signature verifying over ``message``, and naming the
    repository it was read from (if known) — one line naming ``where`` for the first that fails."""
    if public_key is not None and signer != public_key:
        raise ManifestInvalid(
            N_("{where} is signed by key {public_key}…, not the pinned key {public_key2}… (forged?)"),
            where=where,
            public_key=signer[:16],
            public_key2=public_key[:16],
        )
    try:
        embedded.verify(signature, message)
    except InvalidSignature:
        raise ManifestInvalid(N_("{where}: signature does not verify (tampered or forged)"), where=where) from None
    if repo_id is not None and repository != repo_id:
        raise ManifestInvalid(
            N_("{where} belongs to repository {repository}, not {repo_id}"),
            where=where,
            repository=repository[:8],
            repo_id=repo_id[:8],
        )


def head_manifest(link: Link) -> Manifest:
    """The head's own fields as a :class:`Manifest` with no state (what key-slot trust needs)."""
    return Manifest(
        repository=link.repository,
        sequence=link.sequence,
        time=link.time,
        public_key=link.public_key,
        config_sha256=link.config_sha256,
        keys=dict(link.keys),
        snapshots=(),
        indexes=(),
        index_set_sha256=index_set_digest(()),
        packs={},
        digest=link.digest,
        position=link.position,
        checkpoint_position=link.checkpoint,
    )


def walk(head: Link, load: Callable[[str], bytes], *, accepted: tuple[int, str] | None = None) -> list[Link]:
    """The links from the checkpoint before the head's checkpoint (or the chain's first) to the head.

    Goes further back while the links are newer than ``accepted`` (sequence, SHA-256 of the head
    accepted last), and refuses a chain that does not pass through it (a fork).
    """
    own = _load_link(load, head.position, head)
    if own.digest != head.digest:
        raise ManifestInvalid(
            N_("{key}: the head's own link differs from the manifest (replaced or reordered)"),
            key=link_key(head.position),
        )
    links = [head]
    stop: int | None = None  # the checkpoint before the head's: the newer one is checked against it
    while True:
        link = links[-1]
        if accepted is not None:
            _check_ancestry(link, accepted)
        if link.position == 1:
            break
        if stop is not None and link.position <= stop and (accepted is None or link.sequence <= accepted[0]):
            break
        # below ``stop`` a link is read only to find the accepted head, and prune may have removed it
        beyond = accepted[0] if accepted is not None and stop is not None and link.position <= stop else None
        earlier = _load_link(load, link.position - 1, head, accepted_sequence=beyond)
        if earlier.digest != link.previous:
            raise ManifestInvalid(
                N_("{key}: link {position} is not the one link {next} was signed over (replaced, reordered or forked)"),
                key=link_key(earlier.position),
                position=earlier.position,
                next=link.position,
            )
        if earlier.sequence >= link.sequence:
            raise ManifestInvalid(
                N_("{key}: sequence {sequence} does not grow along the chain (replayed link)"),
                key=link_key(link.position),
                sequence=link.sequence,
            )
        in_effect = earlier.position if earlier.full else earlier.checkpoint
        if not link.full and link.checkpoint != in_effect:
            raise ManifestInvalid(N_("{key}: names another checkpoint than its chain"), key=link_key(link.position))
        if accepted is not None and earlier.sequence < accepted[0] < link.sequence:
            raise ManifestInvalid(
                N_("{key}: the chain forked: it does not pass through the manifest accepted at sequence {sequence}"),
                key=link_key(link.position),
                sequence=accepted[0],
            )
        if stop is None and link.full:
            stop = in_effect
        links.append(earlier)
    links.reverse()
    return links


def _check_ancestry(link: Link, accepted: tuple[int, str]) -> None:
    sequence, digest = accepted
    if link.sequence == sequence and digest and link.digest != digest:
        raise ManifestInvalid(
            N_(
                "{key}: the chain forked: link {position} has sequence {sequence} but is not the manifest "
                "accepted under it"
            ),
            key=link_key(link.position),
            position=link.position,
            sequence=sequence,
        )


def _load_link(
    load: Callable[[str], bytes], position: int, head: Link, *, accepted_sequence: int | None = None
) -> Link:
    key = link_key(position)
    try:
        raw = load(key)
    except ObjectNotFound:
        if accepted_sequence is not None:
            raise ManifestInvalid(
                N_(
                    "{key}: link {position} is no longer stored (pruned at the primary, or dropped), so the chain "
                    "cannot show that it descends from the manifest accepted at sequence {sequence}; a "
                    "replication accepting a newer manifest moves that on"
                ),
                key=key,
                position=position,
                sequence=accepted_sequence,
            ) from None
        raise ManifestInvalid(
            N_("{key}: link {position} of the signed chain is missing (dropped)"),
            key=key,
            position=position,
        ) from None
    link = verify_link(raw, public_key=head.public_key, repo_id=head.repository, where=key)
    if link.position != position:
        raise ManifestInvalid(
            N_("{key} holds link {position} (moved, reordered or replayed)"), key=key, position=link.position
        )
    return link


def replay(links: list[Link]) -> Manifest:
    """The state the head of ``links`` signs: the first checkpoint with every link after it applied."""
    oldest = links[0].position
    first = next((link for link in links if link.full), links[0])
    links = links[links.index(first) :]
    if not first.full:
        raise ManifestInvalid(N_("{key}: the chain does not start at a checkpoint"), key=link_key(first.position))
    state = {e.id: e for e in first.snapshots}
    removed = {r.id: r for r in first.removed}
    indexes, packs = set(first.indexes), dict(first.packs)
    for link in links[1:]:
        key = link_key(link.position)
        if link.full:
            _check_checkpoint(link, state, removed)
            state = {e.id: e for e in link.snapshots}
            removed = {r.id: r for r in link.removed}
            indexes, packs = set(link.indexes), dict(link.packs)
            continue
        for entry in link.snapshots:
            known = state.get(entry.id)
            if known is not None and known != entry:
                raise ManifestInvalid(
                    N_("{key}: re-signs snapshot {id} with another time or system"), key=key, id=entry.id[:16]
                )
            state[entry.id] = entry
            removed.pop(entry.id, None)
        for gone in link.removed:
            signed = state.pop(gone.id) if gone.id in state else None
            removed[gone.id] = RemovedSnapshot(gone.id, gone.removed, signed.system if signed else gone.system)
        for pack, size in link.packs.items():
            if packs.setdefault(pack, size) != size:
                raise ManifestInvalid(N_("{key}: signs pack {pack} with another size"), key=key, pack=pack)
        indexes.update(link.indexes)
    head = links[-1]
    names = tuple(sorted(indexes))
    return Manifest(
        repository=head.repository,
        sequence=head.sequence,
        time=head.time,
        public_key=head.public_key,
        config_sha256=head.config_sha256,
        keys=dict(head.keys),
        snapshots=tuple(sorted(state.values(), key=lambda e: (e.time, e.id))),
        indexes=names,
        index_set_sha256=index_set_digest(names),
        packs=packs,
        removed=tuple(sorted(removed.values(), key=lambda r: (r.removed, r.id))),
        digest=head.digest,
        position=head.position,
        checkpoint_position=head.checkpoint,
        first_position=oldest,
    )


def _check_checkpoint(link: Link, state: dict[str, SnapshotEntry], removed: dict[str, RemovedSnapshot]) -> None:
    """A checkpoint may sign snapshots nobody signed yet, never lose one the chain signs."""
    kept = {e.id: e for e in link.snapshots}
    signed_away = {r.id for r in link.removed}
    when = datetime.fromisoformat(link.time)
    for entry in state.values():
        if entry.id in signed_away:
            continue
        if kept.get(entry.id, entry) != entry or entry.id not in kept:
            raise ManifestInvalid(
                N_(
                    "{key}: checkpoint disagrees with the chain: snapshot {id} signed before is neither in it "
                    "nor signed away"
                ),
                key=link_key(link.position),
                id=entry.id[:16],
            )
    for gone in removed.values():
        young = when - datetime.fromisoformat(gone.removed) < REMOVED_KEPT
        if young and gone.id not in signed_away and gone.id not in kept:
            raise ManifestInvalid(
                N_("{key}: checkpoint disagrees with the chain: it drops the removal of snapshot {id}"),
                key=link_key(link.position),
                id=gone.id[:16],
            )


def resolve(head: Link, load: Callable[[str], bytes], *, accepted: tuple[int, str] | None = None) -> Manifest:
    """The state a verified head signs, every link on the way verified (raises :class:`ManifestInvalid`)."""
    return replay(walk(head, load, accepted=accepted))
