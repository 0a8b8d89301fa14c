"""A run whose signed manifest names objects neither site holds intact: what still goes, what waits.

Such objects are found in the listings (missing at the source, or of another size than the
manifest signs) before anything is copied, or by the packs phase (bytes that do not hash to
their name), or — index files and snapshots, whose sizes nothing signs — by reading them all
before either of their phases writes one: then the landing below is worked out again before
indexes and snapshots go.

Refusing the whole run (as replication did) let one damaged or missing object at the primary
keep every new pack, index and snapshot of every system from the offsite until someone mends
the primary. Committing the manifest would make the offsite's signed state claim an object it
lacks, which ``verify-offsite`` rightly reports red. So the run lands the target on the newest
signed state it can hold whole (its *landing state*) and copies:

* every intact pack, WAL object, key slot and the config: content-addressed (or hashed against
  the signed manifest), and inert until an index names them — a pack no index names is neither
  a problem for ``verify-offsite`` nor read by a restore;
* only the index files, snapshots and chain links the landing state names. An index file cannot
  be read without the key, so which one names the damaged pack is unknown: a new one might, and
  a restore at the offsite could then look for a blob in a pack that is not there. A snapshot
  cannot be told keylessly from one whose data is all present either, and one the offsite's
  signed manifest does not name is "not yet signed" (a problem) to its verification.

The landing state is the target's accepted manifest — or, for a format-2 chain, the newest link
between it and the source's head whose replayed state the two sites hold whole
(:func:`intact_prefix`): a state the primary signed, descending from the one the offsite
accepted, so the offsite's recovery point moves up to the link before the damage instead of
staying at its last run. Its bytes become the target's ``manifest`` head and the pin.

Nothing here weakens the refusals in :mod:`replication.trust`: a forged, tampered or rolled-back
manifest is refused before any of this runs. Deleting objects at the primary gains an attacker
nothing the old refusal did not give: the target's head never moves to a state it does not hold
whole, never backwards, and a run that lands short deletes nothing at the target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from backup.manifest import Manifest, ManifestInvalid, verify_signed
from backup.manifestchain import Link, link_reader, replay, resolve, verify_link, walk
from backup.manifeststate import CHAIN_PREFIX, link_key
from replication.plan import CopyPlan, missing_referenced
from replication.records import Pin
from replication.transfer import TransferOutcome
from replication.trust import either_reader
from storage.backend import Backend, ObjectInfo
from storage.errors import StorageError

#: phases whose objects must be named by the landing state to be copied (see the module docstring)
NAMED_ONLY = ("indexes", "snapshots")


def hold_back(plan: CopyPlan, landing: Manifest | None, not_intact: dict[str, str]) -> list[str]:
    """Take out of ``plan`` what the target may not receive while it lands on ``landing``; return the keys.

    The objects neither site holds intact leave the packs phase too: one of the wrong size at the
    source would only fail its transfer, and a failed transfer stops the phases after it.
    """
    named = set(landing.referenced()) if landing is not None else set()
    held = []
    for phase, infos in plan.phases.items():
        kept: list[ObjectInfo] = []
        for info in infos:
            if info.key in not_intact or (phase in NAMED_ONLY and info.key not in named):
                held.append(info.key)
            else:
                kept.append(info)
        plan.phases[phase] = kept
    return sorted(held)


def intact_prefix(
    head_raw: bytes,
    head: Manifest,
    current: Manifest | None,
    pin: Pin | None,
    load: Callable[[str], bytes],
    source: dict[str, ObjectInfo],
    target: dict[str, ObjectInfo],
    not_intact: dict[str, str],
) -> tuple[Manifest, str] | None:
    """The newest link of ``head``'s chain after ``current`` whose state the two sites hold whole,
    with its key; ``None`` for a format-1 manifest or when there is none.

    ``load`` reads links (the source's, else the target's). The chain is walked once from the
    head through ``current`` (a fork is no prefix to land on) and each candidate's state is the
    replay of the links up to it; the one chosen is resolved once more on its own, so the links
    its verification reads are among what it names. Candidates start before the first link
    that names an object of ``not_intact`` (every state from there to the head that still
    names it is short) and go back; each is checked against both listings in full, since an
    older state may name objects the head no longer does.
    """
    if not head.position or head.position <= 1:
        return None
    try:
        link = verify_signed(head_raw, public_key=head.public_key, repo_id=head.repository, where="manifest")
        if not isinstance(link, Link):
            return None
        # descending from what the target holds, or else from what was accepted last (a target
        # whose manifest was lost): a state off that line is a fork, never a place to land
        accepted = (
            (current.sequence, current.digest)
            if current is not None
            else (pin.sequence, pin.manifest_sha256)
            if pin is not None
            else None
        )
        links = walk(link, load, accepted=accepted)
    except ManifestInvalid:
        return None  # the verifier names what is wrong with the chain; the target stays where it is
    floor = max(current.sequence if current is not None else 0, pin.sequence if pin is not None else 0)
    lowest = current.position if current is not None and current.position else 0
    first_damaged = next((i for i, one in enumerate(links) if _names_any(one, not_intact)), len(links) - 1)
    for index in range(min(first_damaged, len(links) - 1) - 1, -1, -1):
        candidate = links[index]
        if candidate.position <= lowest or candidate.sequence <= floor:
            break
        try:
            state = replay(links[: index + 1])
        except ManifestInvalid:
            break  # a prefix that does not start at a checkpoint: no older one does either
        if missing_referenced(state, source, target):
            continue
        # As the target's verification will read it: from the candidate back to the checkpoint
        # before its own, which can be older than where the head's walk began (a first run).
        # Those links are part of what the state names, so they must be held and are copied.
        try:
            whole = resolve(candidate, load, accepted=accepted)
        except ManifestInvalid:
            continue
        if not missing_referenced(whole, source, target):
            return whole, link_key(candidate.position)
    return None


def _names_any(link: Link, keys: dict[str, str]) -> bool:
    named = [*link.packs, *(f"index/{n}" for n in link.indexes), *(f"snapshots/{e.id}" for e in link.snapshots)]
    return any(key in keys for key in named) or link_key(link.position) in keys


def land_short(
    source: Backend,
    target: Backend,
    manifest: Manifest,
    manifest_raw: bytes,
    current: Manifest | None,
    pin: Pin | None,
    src: dict[str, ObjectInfo],
    tgt: dict[str, ObjectInfo],
    not_intact: dict[str, str],
) -> tuple[Manifest | None, bytes | None]:
    """Where a run whose manifest names objects neither site holds intact leaves the target: the
    newest link of the chain it holds whole, with its bytes for the head, else where it is
    (``None`` bytes: the head is not written)."""
    load = either_reader(link_reader(source), link_reader(target))
    # a snapshot the head no longer signs is never sent (plan_copy: "unsigned"), though the source
    # may still list it (a forget that died before removing it, or its bytes planted back): it is
    # no part of an older state this run can make whole
    signed = manifest.snapshot_ids
    sendable = {
        key: info
        for key, info in src.items()
        if not key.startswith("snapshots/") or key.removeprefix("snapshots/") in signed
    }
    found = intact_prefix(manifest_raw, manifest, current, pin, load, sendable, tgt, not_intact)
    if found is None:
        return current, None
    state, key = found
    try:
        raw = load(key)
    except StorageError:
        return current, None
    if hashlib.sha256(raw).hexdigest() != state.digest:
        return current, None  # rewritten since the walk read it: links never are, so it is not the primary's
    return state, raw


def signed_links(state: Manifest) -> Callable[[str, bytes], bool]:
    """Whether the bytes read to be sent as a link ``state`` names are a link signed for that
    position. The chain was verified when the run began, but the copy reads the link again: one
    replaced at the primary meanwhile would reach the offsite under the head it accepts, and a
    link at or before the accepted head is never compared again (verify-offsite red for good)."""
    named = {key for key in state.referenced() if key.startswith(CHAIN_PREFIX)}

    def genuine(key: str, body: bytes) -> bool:
        if key not in named:
            return True
        try:
            link = verify_link(body, public_key=state.public_key, repo_id=state.repository, where=key)
        except ManifestInvalid:
            return False
        return link_key(link.position) == key

    return genuine


def damaged_named(outcome: TransferOutcome, manifest: Manifest) -> tuple[dict[str, str], set[str]]:
    """A phase's failures when every one is an object that failed alone (damaged, vanished or
    planted at the source): those the manifest names, with their problems, and the others;
    otherwise none, and the run stops as before (a failing endpoint)."""
    named = manifest.referenced()
    if set(outcome.errors) != outcome.damaged:
        return {}, set()
    return {k: v for k, v in outcome.errors.items() if k in named}, {k for k in outcome.errors if k not in named}
