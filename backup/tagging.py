"""Changing a snapshot's tags without touching it (``bcpctl tag``).

A snapshot object is named by the SHA-256 of its bytes and signed into the repository
manifest, so it is never rewritten: the new tags go into a new snapshot object with the
same tree, time and source that ``supersedes`` the old one. Listings show the new one; the
old one stays stored, verifiable by ``check`` with everything it carried (a control-state
copy's signature tags included), and goes when the new one is forgotten
(:func:`backup.snapshot.relabelled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from backup.repository import Repository
from backup.run import refuse_control_tags, refuse_reserved
from backup.snapshot import Snapshot, current, list_snapshots, relabelled, save_snapshot
from dc.errors import N_, UsageError


def new_tags(
    tags: Mapping[str, str],
    *,
    add: Mapping[str, str] | None = None,
    remove: Iterable[str] = (),
    set_to: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The tags after ``--set`` (all replaced) or ``--add`` / ``--remove`` (by key)."""
    removing = list(remove)
    if set_to is not None and (add or removing):
        raise UsageError(N_("--set replaces every tag; give it alone, or use --add and --remove"))
    refuse_control_tags({**(add or {}), **(set_to or {})})
    if set_to is not None:
        return dict(set_to)
    if not add and not removing:
        raise UsageError(N_("give --add K=V, --remove K or --set K=V"))
    changed = {k: v for k, v in tags.items() if k not in set(removing)}
    changed.update(add or {})
    return changed


@dataclass(frozen=True)
class Tagged:
    #: the snapshot as listed now (the original itself when the tags did not change)
    snapshot: Snapshot
    original: str
    changed: bool


def tag_snapshot(
    repo: Repository,
    snapshot: Snapshot,
    *,
    add: Mapping[str, str] | None = None,
    remove: Iterable[str] = (),
    set_to: Mapping[str, str] | None = None,
) -> Tagged:
    """Write the re-labelled snapshot (nothing when the tags stay the same).

    ``snapshot`` may be one an earlier ``tag`` re-labelled (its id still resolves): the change
    then applies to the current labels, never to the older ones beside them — a second
    re-label of the same original would list one snapshot twice and drop the first change.
    """
    refuse_reserved(snapshot.system)
    snapshot = _current_labels(repo, snapshot)
    tags = new_tags(snapshot.tags, add=add, remove=remove, set_to=set_to)
    if tags == snapshot.tags:
        return Tagged(snapshot, snapshot.id, False)
    saved = save_snapshot(repo, replace(snapshot, tags=tags, supersedes=snapshot.id, id=""))
    return Tagged(saved, snapshot.id, True)


def _current_labels(repo: Repository, snapshot: Snapshot) -> Snapshot:
    """The listed snapshot that re-labels ``snapshot`` (itself when none does)."""
    every = list_snapshots(repo, system=snapshot.system, superseded=True, errors={})
    heads = [s for s in current(every) if s.id == snapshot.id or snapshot.id in {o.id for o in relabelled(s, every)}]
    if len(heads) > 1:
        ids = ", ".join(s.short_id for s in heads)
        raise UsageError(
            N_("snapshot {short_id} is listed as {n_heads} re-labelled snapshots ({ids}); tag one"),
            short_id=snapshot.short_id,
            n_heads=len(heads),
            ids=ids,
        )
    return heads[0] if heads else snapshot
