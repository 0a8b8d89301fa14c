"""What this machine trusts about a repository's key slots before it can unlock it.

Before unlocking nothing in storage can be verified: whoever writes ``keys/`` can also write
``manifest``. So each machine remembers, in its cache, what it learnt from earlier unlocks —
the public key of the repository's manifest (trust on first use, as the offsite pins it on
first replication, unless the site configuration pins it) and the slots that opened here
(with the SHA-256 of their bytes). Next time those slots, and the slots a manifest verified
with that key names, are tried first and all of them (:mod:`backup.slotorder`), so
planted slots, even with a forged manifest, cannot crowd a genuine one out of the budget.
A lost cache costs only that head start.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from backup.slotformat import KEYS_PREFIX
from backup.slotorder import SignedSlots

_FILE = "unlock-trust.json"
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: slots remembered per repository (operators who unlocked here); the oldest are forgotten
_REMEMBERED = 16


@dataclass(frozen=True)
class LocalTrust:
    manifest_key: str | None = None
    #: ``keys/<id>`` → SHA-256 of slots that opened on this machine
    opened: dict[str, str] = field(default_factory=dict)

    def with_manifest(self, manifest: SignedSlots) -> SignedSlots:
        """``manifest`` (from :func:`backup.manifest.signed_slots`) plus the slots that opened here."""
        trusted = {**manifest.trusted, **self.opened}
        return SignedSlots(trusted=trusted, hinted=manifest.hinted, verified=manifest.verified)


def load_trust(cache: Path) -> LocalTrust:
    """What ``cache`` (this repository's cache directory) remembers; nothing for a missing or odd file."""
    try:
        doc = json.loads((cache / _FILE).read_text(encoding="utf-8"))
        key = doc.get("manifest_key")
        opened = {
            str(k): str(v)
            for k, v in dict(doc.get("opened", {})).items()
            if str(k).startswith(KEYS_PREFIX) and _HEX64.fullmatch(str(v))
        }
    except (OSError, ValueError, TypeError, AttributeError):
        return LocalTrust()
    return LocalTrust(key if isinstance(key, str) and _HEX64.fullmatch(key) else None, opened)


def remember(cache: Path, trust: LocalTrust, manifest_key: str, slot_key: str, digest: str) -> None:
    """Record the repository's manifest key and the slot that just opened; a read-only cache is no error."""
    opened = {k: v for k, v in trust.opened.items() if k != slot_key}
    opened[slot_key] = digest
    opened = dict(list(opened.items())[-_REMEMBERED:])
    if trust.manifest_key == manifest_key and trust.opened == opened:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps({"manifest_key": manifest_key, "opened": opened}), encoding="utf-8")
        tmp.replace(cache / _FILE)
    except OSError:
        pass  # the next unlock only loses its head start
