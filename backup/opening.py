"""Opening a repository: the one place that owns its lifetime (Borg's ``with_repository``).

Every command goes through :func:`open_repository` (a passphrase) or
:func:`backup.escrow.open_repository_with_shares` (escrow shares). Each unlocks a key slot
and hands the rest to :func:`unlocked_repository`: open the local index cache, sync it with
the repository's index files, and re-sign the manifest on close when the committed state
changed, so no command can forget to. The manifest is built from the repository and its
snapshots, which is why the opener sits above :mod:`backup.repository` and
:mod:`backup.manifest` rather than inside either.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backup.cache import BlobCache
from backup.keys import Unwrapped, config_digest, unwrap
from backup.repository import RepoConfig, Repository, read_config
from storage.backend import Backend

CACHE_ENV = "BCPCTL_CACHE_DIR"


def cache_dir() -> Path:
    if path := os.environ.get(CACHE_ENV):
        return Path(path)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bcpctl"


@contextmanager
def unlocked_repository(
    backend: Backend, config: RepoConfig, raw: bytes, key: Unwrapped, *, sync: bool, sign_on_close: bool
) -> Iterator[Repository]:
    """The repository whose master key ``key`` holds: cache opened and synced, signed and closed afterwards."""
    # One cache per (repository, location): the offsite replica shares the id but may lag.
    where = hashlib.sha256(backend.url.encode()).hexdigest()[:12]
    cache = BlobCache(cache_dir() / config.id / where / "index.sqlite")
    repo = Repository(backend, config, raw, key.master, key.slot_id, cache)
    repo.key_problems = list(key.skipped)
    try:
        if sync:
            repo.sync_index()
        yield repo
    finally:
        try:
            if repo.state_changed and sign_on_close:
                from backup.manifest import sign_manifest  # only a change pays for the signing code

                sign_manifest(repo)
        finally:
            repo.close()


@contextmanager
def open_repository(
    backend: Backend, password: str, *, sync: bool = True, sign_on_close: bool = True
) -> Iterator[Repository]:
    """Unlock ``backend``'s repository and sync the index cache; close everything afterwards.

    If the committed state changed, the manifest is re-signed on close (``sign_on_close=False``
    only for tests that need an unsigned repository).
    """
    config, raw = read_config(backend)
    key = unwrap(backend, password.encode(), repo_id=config.id, config_digest=config_digest(raw))
    with unlocked_repository(backend, config, raw, key, sync=sync, sign_on_close=sign_on_close) as repo:
        yield repo
