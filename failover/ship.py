"""Copying repository objects between sites through the ``Backend`` protocol, keyless.

Failback needs the reverse of replication: the objects written at the offsite site during
a failover must reach the primary's repository. Until ``replication.sync`` (signed
manifests, Object Lock, ledger) is on main, this plain copy does the job with the same
guarantees that matter here: ciphertext only, commit order (key slots and config, packs,
index files, snapshots last — so a snapshot never arrives before the data it references),
every content-addressed object hashed against its name before it is written, nothing at
the target ever overwritten or deleted, and a rerun sends only what is still missing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from backup.backend import Backend
from backup.errors import CorruptObject
from backup.repository import CONFIG_KEY
from failover.errors import FailoverRefused

_HASHED = re.compile(r"^(data/[0-9a-f]{2}/|meta/[0-9a-f]{2}/|index/|snapshots/)([0-9a-f]{64})$")
# Commit order: what a later object references must already be there.
_ORDER = ("keys/", "data/", "meta/", "index/", "snapshots/")


@dataclass
class ShipResult:
    source: str
    target: str
    copied: int = 0
    bytes: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)


def _phase(key: str) -> int:
    for number, prefix in enumerate(_ORDER):
        if key.startswith(prefix):
            return number
    return len(_ORDER)


def copy_missing(source: Backend, target: Backend, *, on_object: Callable[[int], None] | None = None) -> ShipResult:
    """Copy every repository object ``target`` lacks from ``source``, verified, in commit order."""
    result = ShipResult(source.url, target.url)
    src_config = source.load(CONFIG_KEY)
    try:
        dst_config = target.load(CONFIG_KEY)
    except Exception:
        dst_config = None
    if dst_config is not None and dst_config != src_config:
        raise FailoverRefused(f"{target.url} holds a different repository than {source.url}; nothing was copied")
    present = {info.key for info in target.list("")}
    wanted = sorted(
        (info for info in source.list("") if info.key.startswith(_ORDER)), key=lambda i: (_phase(i.key), i.key)
    )
    for info in wanted:
        if info.key in present:
            result.present += 1
            continue
        data = source.load(info.key)
        if (m := _HASHED.match(info.key)) and hashlib.sha256(data).hexdigest() != m[2]:
            raise CorruptObject(f"{source.url}/{info.key} does not match its name; not copied (damaged source)")
        target.save(info.key, data)
        result.copied += 1
        result.bytes += len(data)
        if on_object:
            on_object(len(data))
    if dst_config is None:
        # The config last: until it exists the target is not a repository anyone could open half-filled.
        target.save_new(CONFIG_KEY, src_config)
        result.copied += 1
    return result
