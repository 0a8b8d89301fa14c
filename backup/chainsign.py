"""Signing a format-2 manifest: one link after the chain's last (:mod:`backup.manifestchain`).

The signer reads only the head (in ``serve`` not even that: the memo remembers the link it
stored), signs what its process's journal holds, and claims the next position with a
create-if-absent write. Losing that race means another signer's link is there: it is verified
and this signature goes after it. A checkpoint — the whole state, listed as format 1 lists it —
is written when the journal cannot say what changed (prune, repair), at the upgrade from
format 1, and every :data:`~backup.manifestchain.CHECKPOINT_EVERY` links.

A delta never signs back in a snapshot whose removal another process (``forget``) signed after
this one wrote it: the links since the head this process knew before writing it are read for
it (:func:`_signed_away`), a few in ``serve``, which signs every minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.errors import RepositoryError
from backup.manifestchain import (
    CHECKPOINT_EVERY,
    Link,
    chained_link,
    encode_link,
    link_key,
    link_reader,
    resolve,
    verify_link,
)
from backup.manifeststate import MANIFEST_KEY, Journal, Manifest, ManifestInvalid, RemovedSnapshot, SnapshotEntry
from backup.objectsize import refuse_oversized
from dc.errors import N_, Message
from storage.backend import Backend
from storage.errors import ObjectNotFound

#: what a checkpoint states: snapshots, index files, packs, removal list
State = tuple[tuple[SnapshotEntry, ...], tuple[str, ...], dict[str, int], tuple[RemovedSnapshot, ...]]

#: positions tried before giving up (each loss means another signer just signed)
_ATTEMPTS = 16


def extend_chain(
    backend: Backend,
    key: Ed25519PrivateKey,
    stored: Manifest | Link | None,
    *,
    own: str,
    repo_id: str,
    config_sha256: str,
    now: datetime,
    journal: Journal,
    without: frozenset[str],
    checkpoint: bool,
    keys_for: Callable[[Manifest | Link | None], dict[str, str]],
    state_for: Callable[[Manifest | None], State],
) -> Link:
    """Sign and store the next link (and the ``manifest`` copy of it); return it with its digest.

    ``stored``: the verified manifest found at ``manifest`` (a format-1 one is upgraded from).
    ``state_for``: the whole current state given the previous one (only for a checkpoint).
    """
    head = stored
    for _attempt in range(_ATTEMPTS):
        head = _chain_end(backend, head, own, repo_id)
        position = head.position + 1 if isinstance(head, Link) else 1
        in_effect = (head.position if head.full else head.checkpoint) if isinstance(head, Link) else 0
        full = (
            checkpoint
            or journal.needs_checkpoint
            or not isinstance(head, Link)
            or position - in_effect >= CHECKPOINT_EVERY
        )
        when = now.isoformat(timespec="seconds")
        if full:
            snapshots, indexes, packs, removed = state_for(_state_of(backend, head))
            # what forget removes may never have been signed, so no earlier state names it; a
            # checkpoint says so all the same, as a delta does, or a signer holding it unsigned
            # finds no word of its removal (``_signed_away``)
            listed = {r.id for r in removed}
            removed += tuple(RemovedSnapshot(i, when, None) for i in sorted(without) if i not in listed)
        else:
            noted = {e.id: e for e in journal.added.values() if e.id not in without}
            if noted and isinstance(head, Link):
                since = {journal.since.get(snapshot_id) for snapshot_id in noted}
                lowest = min((s for s in since if s is not None), default=None)
                # one link, known for each (two digests at one position: not both in this chain)
                floor = None if None in since or lowest is None else lowest
                if floor is not None and len({s for s in since if s is not None and s[0] == floor[0]}) > 1:
                    floor = None
                for snapshot_id in _signed_away(backend, head, set(noted), floor):
                    del noted[snapshot_id]
            snapshots = tuple(sorted(noted.values(), key=_order))
            indexes = tuple(sorted(journal.indexes))
            packs = {pack: size for name in indexes for pack, size in journal.indexes[name].items()}
            removed = tuple(RemovedSnapshot(snapshot_id, when, None) for snapshot_id in sorted(without))
        link = Link(
            repository=repo_id,
            sequence=max((head.sequence + 1) if head else 1, int(now.timestamp() * 1000)),
            time=when,
            public_key=own,
            config_sha256=config_sha256,
            keys=keys_for(head),
            position=position,
            previous=head.digest if head else "",
            checkpoint=position if full else in_effect,
            full=full,
            snapshots=snapshots,
            indexes=indexes,
            packs=packs,
            removed=removed,
        )
        raw = encode_link(link, key)
        refuse_oversized(Message(N_("a manifest link")), "manifest link", len(raw))
        if backend.save_new(link_key(position), raw):
            backend.save(MANIFEST_KEY, raw)
            return replace(link, digest=hashlib.sha256(raw).hexdigest())
    raise RepositoryError(
        N_("could not claim a position in the manifest chain of {url} after {count} tries"),
        url=backend.url,
        count=_ATTEMPTS,
    )


def _signed_away(backend: Backend, head: Link, noted: set[str], floor: tuple[int, str] | None) -> set[str]:
    """Which of ``noted`` (committed, not yet signed by this process) the chain up to ``head`` signs as removed.

    A ``forget`` in another process may have listed such a snapshot, signed its removal and
    removed it while this process held it unsigned; a delta naming it after that would sign it
    back in (a forgotten snapshot present again, its object gone: replication refuses the
    manifest as truncated). The newest mention decides; the links from the head back to
    ``floor`` are read, or back to the checkpoint in effect, whose lists say it all.

    ``floor`` is a position stored before the snapshot's object was written, with the digest of
    the manifest stored there (:meth:`~backup.manifeststate.Journal.floor`: the head the unlock
    read, or this process's last link), so forget, listing the object after that, claims its
    removal link R beyond it. That holds only in a chain that still has that link: a storage
    rolled back since (restored in place, or old objects replayed by someone who can write it
    but not sign) may have grown past the position again with other links, one of them R. The
    walk stops at the floor only where the link after it chains to that digest, and otherwise
    goes on to the checkpoint in effect.
    Against this signature's own link Q, claimed create-if-absent after the walk:

    * R < Q: R is among the links read (a lost claim re-reads from the new head), or a
      checkpoint between carries the removal in its list (R may be one: it lists ``without``):
      the snapshot is left out;
    * R > Q: forget signed after this link, so replay applies the removal after it;
    * the object is deleted only after R is stored: while no R exists it is still there, and
      signing it is right.

    Link times would bound the walk too, but they come from each signer's clock (a ``forget``
    run on a host whose clock lags signs a removal that looks older than the snapshot) and
    a re-labelled snapshot keeps its original's time; positions depend on neither.

    A link that does not read back leaves the rest undecided: the chain is damaged, and what
    verification makes of it does not depend on this signature.
    """
    load = link_reader(backend)
    undecided, away = set(noted), set[str]()
    link = head
    if floor is not None and floor[0] >= head.position and (floor[0], floor[1]) != (head.position, head.digest):
        floor = None  # not a link of this chain (started afresh, or rolled back): no floor
    if floor is not None and floor[0] == head.position:
        return away  # nothing signed since
    while undecided:
        removed = undecided & {r.id for r in link.removed}
        away |= removed
        undecided -= removed | {e.id for e in link.snapshots}
        if floor is not None and link.position - 1 == floor[0]:
            if link.previous == floor[1]:
                break
            floor = None  # the link at the floor is another one: the chain was rolled back
        if link.full or link.position <= 1:
            break
        try:
            raw = load(link_key(link.position - 1))
            link = chained_link(raw, digest=link.previous, position=link.position - 1, next_position=link.position)
        except (ObjectNotFound, ManifestInvalid):
            break
    return away


def _order(entry: SnapshotEntry) -> tuple[str, str]:
    return entry.time, entry.id


def _chain_end(backend: Backend, head: Manifest | Link | None, own: str, repo_id: str) -> Manifest | Link | None:
    """The last link of the chain: ``manifest`` can lag it when two signers store it out of order."""
    if not isinstance(head, Link):
        return head
    load = link_reader(backend)
    while True:
        key = link_key(head.position + 1)
        try:
            raw = load(key)
        except ObjectNotFound:
            return head
        found = verify_link(raw, public_key=own, repo_id=repo_id, where=f"{backend.url}/{key}")
        if found.position != head.position + 1:
            # a copy of another link (signed, so it verifies): following it would loop for ever
            raise ManifestInvalid(
                N_("{key} holds link {position} (moved, reordered or replayed)"), key=key, position=found.position
            )
        head = found


def _state_of(backend: Backend, head: Manifest | Link | None) -> Manifest | None:
    """The whole state a checkpoint carries forward (its removal list, the order of its entries)."""
    if not isinstance(head, Link):
        return head
    try:
        return resolve(head, link_reader(backend))
    except ManifestInvalid:
        return None  # a damaged chain: the checkpoint starts afresh, as format 1 does after a damaged manifest
