"""The last manifest a long-running process signed, so its next signature need not re-verify it.

A signature starts from the stored manifest (it carries the snapshot entries, the removal list
and the genuine key slots forward). Parsing and verifying it is linear in the repository's
snapshot count — about 4 ms per 1,000 snapshots here, ~30% of a signature's CPU — and in
``bcpctl serve`` the stored manifest is, almost always, the very one this process wrote a
minute before. The memo keeps that manifest with the SHA-256 of its stored bytes: when the
bytes read back hash the same, they are the bytes this process signed with the same key, and
verifying them again could only give the same answer. Any other bytes (another signer's
manifest, a damaged or planted one) are parsed and verified in full, as without a memo.

A hash of the stored bytes is still linear, but at memory speed (~2 ms for the 2.3 MB of
16,000 snapshots); what stays linear in a format-1 signature is written in ``docs/scale.md``.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar


class _Stored(Protocol):
    """What the memo needs of a :class:`backup.manifest.Manifest` (which takes a memo itself)."""

    @property
    def repository(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def position(self) -> int: ...


M = TypeVar("M", bound=_Stored)


class ManifestMemo(Generic[M]):
    """Thread-safe; one per process, shared by every repository it signs (keyed by URL, id and key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signed: dict[tuple[str, str, str], M] = {}

    def recall(self, url: str, repo_id: str, public_key: str, digest: str) -> M | None:
        """The manifest remembered for this repository if its stored bytes hash to ``digest``."""
        with self._lock:
            manifest = self._signed.get((url, repo_id, public_key))
        return manifest if manifest is not None and manifest.digest == digest else None

    def position(self, url: str, repo_id: str, public_key: str) -> tuple[int, str] | None:
        """The chain position and digest of the manifest remembered for this repository (``None``:
        none, or format 1).

        It was stored before this call, so anything written after it is later than that link
        (:attr:`backup.manifeststate.Journal.seen`) — as long as the chain still holds it: the
        storage may have been rolled back since, which the digest tells.
        """
        with self._lock:
            manifest = self._signed.get((url, repo_id, public_key))
        return (manifest.position, manifest.digest) if manifest is not None and manifest.position else None

    def remember(self, url: str, manifest: M) -> None:
        """``manifest`` was just stored at ``url`` (its ``digest`` set) or verified from there."""
        if not manifest.digest:
            raise ValueError("a manifest without the digest of its stored bytes")
        with self._lock:
            self._signed[(url, manifest.repository, manifest.public_key)] = manifest
