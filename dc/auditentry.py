"""One entry of the audit chain, and how it links to the one before.

The log (:mod:`dc.audit`) writes and verifies entries; the failover continuation
(:mod:`dc.continuation`) reads them to say what a promoted site received. Both build on this
module, so the entry and its hash are defined once, below either of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: the ``prev_hash`` of the first entry
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str

    def parsed_details(self) -> dict[str, Any]:
        """The details as a mapping (empty when they are not a JSON object)."""
        try:
            found = json.loads(self.details)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, details: str, prev_hash: str) -> str:
    """SHA-256 over a canonical JSON array of the entry's fields (details as stored text)."""
    doc = [seq, at, actor, action, subject, details, prev_hash]
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
