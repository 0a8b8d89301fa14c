"""Removing the links of a format-2 manifest chain that no verification reads any more (prune).

A verification of a head reads its chain back to the checkpoint before the head's own
checkpoint (:func:`backup.manifestchain.walk`); a later head's window starts there or later.
So once prune has signed its checkpoint, links older than the checkpoint before it are read by
no verification of the current head or of any head after it, and are removed.

Two readers may still want them for a while, so a link also stays until it is
:data:`LINKS_KEPT` old: a reader that read an older head just before the checkpoint and is
walking its chain now, and a verification pinned to a head accepted before the newest
checkpoints (``check --integrity-only`` at the primary while replication lags), which walks back
to that head to show the chain descends from it.

Crash safety: links are removed oldest first, after the checkpoint is stored, so a prune
killed anywhere leaves the head's window whole and, at worst, old links the next prune removes.
The offsite removes them as it removes every object the primary no longer has (the delete
delay, and never while Object Lock holds them); a copy kept there is read by nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from backup.manifestchain import Link, link_reader, verify_link
from backup.manifeststate import CHAIN_PREFIX, link_key
from dc.failpoint import failpoint
from storage.backend import Backend

#: how long a link stays whatever the chain (as long as replication's default delete delay)
LINKS_KEPT = timedelta(days=7)


def oldest_needed(backend: Backend, head: Link) -> int:
    """The position of the checkpoint before the head's newest checkpoint (what its window starts at)."""
    newest = head.position if head.full else head.checkpoint
    if newest <= 1:
        return 1
    key = link_key(newest - 1)
    before = verify_link(link_reader(backend)(key), public_key=head.public_key, repo_id=head.repository, where=key)
    return before.position if before.full else before.checkpoint


def links_to_remove(stored: dict[int, datetime], keep_from: int, now: datetime) -> list[int]:
    """Positions below ``keep_from`` stored more than :data:`LINKS_KEPT` before ``now``, oldest first."""
    return sorted(p for p, when in stored.items() if p < keep_from and now - when >= LINKS_KEPT)


def remove_old_links(backend: Backend, head: Link, now: datetime) -> list[str]:
    """Remove the links no verification of ``head`` or a later head reads; return their keys.

    ``head``: the checkpoint just stored. ``now``: the storage's clock (links are dated by it).
    """
    keep_from = oldest_needed(backend, head)
    stored = {}
    for info in backend.list(CHAIN_PREFIX):
        name = info.key.removeprefix(CHAIN_PREFIX)
        if name.isdigit() and info.key == link_key(int(name)):
            stored[int(name)] = datetime.fromtimestamp(info.mtime, now.tzinfo)
    removed = []
    for position in links_to_remove(stored, keep_from, now):
        backend.remove(link_key(position))
        removed.append(link_key(position))
        failpoint("prune.link-removed")
    return removed
