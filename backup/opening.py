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
from dataclasses import replace
from pathlib import Path

from backup.cache import BlobCache
from backup.keys import Unwrapped, config_digest, unwrap
from backup.manifest import public_key_hex, sign_manifest, signed_head, signing_key, slots_of
from backup.repository import ChunkerParams, RepoConfig, Repository, create_repository, read_config
from backup.slotformat import KEYS_PREFIX
from backup.slottrust import LocalTrust, load_trust, remember
from storage.backend import Backend

CACHE_ENV = "BCPCTL_CACHE_DIR"


def cache_dir() -> Path:
    if path := os.environ.get(CACHE_ENV):
        return Path(path)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bcpctl"


def unlock(
    backend: Backend,
    secret: bytes,
    config: RepoConfig,
    raw: bytes,
    *,
    kinds: tuple[str, ...] = ("passphrase",),
    refusal: str | None = None,
    manifest_key: str | None = None,
) -> Unwrapped:
    """:func:`~backup.keys.unwrap` with the slots this machine and the signed manifest vouch for tried first.

    ``manifest_key`` is a configured pin (a site's ``manifest_public_key``); without one, the
    key this machine remembers from an earlier unlock (:mod:`backup.slottrust`).
    """
    cache = cache_dir() / config.id
    trust = load_trust(cache)
    pinned = manifest_key or trust.manifest_key
    head = signed_head(backend, config.id, pinned)
    signed = trust.with_manifest(slots_of(head, pinned))
    unlocked = unwrap(
        backend,
        secret,
        repo_id=config.id,
        config_digest=config_digest(raw),
        kinds=kinds,
        refusal=refusal,
        signed=signed,
    )
    own = public_key_hex(signing_key(unlocked.master, config.id))
    remember(cache, trust, own, KEYS_PREFIX + unlocked.slot_id, unlocked.slot_digest)
    if head is not None and head.public_key == own:
        # read before anything is written through this key: a floor for the forget race
        # (backup/chainsign.py ``_signed_away``) that costs no read of its own
        return replace(unlocked, seen=head.position, seen_digest=head.digest)
    return unlocked


def index_cache(backend: Backend, config: RepoConfig) -> BlobCache:
    # One cache per (repository, location): the offsite replica shares the id but may lag.
    where = hashlib.sha256(backend.url.encode()).hexdigest()[:12]
    return BlobCache(cache_dir() / config.id / where / "index.sqlite")


def init_repository(
    backend: Backend,
    password: str,
    *,
    chunker: ChunkerParams | None = None,
    pack_size: int = 16 * 1024 * 1024,
    kdf: dict[str, int] | None = None,
    manifest_format: int = 2,
) -> RepoConfig:
    """Create the config and the first key slot, and sign the first manifest. Refuses an existing repository.

    Signed from the start, so that a slot planted before the first backup is already unsigned.
    ``manifest_format`` 2 (a chain of signed links whose cost is the work since the last
    signature, :mod:`backup.manifestchain`) unless every verifier of the repository still runs a
    bcpctl that reads format 1 only; every signer keeps the format it finds.
    """
    made = create_repository(backend, password, chunker=chunker, pack_size=pack_size, kdf=kdf)
    repo = Repository(backend, made.config, made.raw, made.master, made.slot_id, index_cache(backend, made.config))
    repo.added_slots.add(made.slot_id)
    try:
        sign_manifest(repo, chain=manifest_format == 2)
    finally:
        repo.cache.close()  # not repo.close(): the caller still owns the backend
    own = public_key_hex(signing_key(made.master, made.config.id))
    slot_digest = hashlib.sha256(made.slot).hexdigest()
    remember(cache_dir() / made.config.id, LocalTrust(), own, KEYS_PREFIX + made.slot_id, slot_digest)
    return made.config


@contextmanager
def unlocked_repository(
    backend: Backend, config: RepoConfig, raw: bytes, key: Unwrapped, *, sync: bool, sign_on_close: bool
) -> Iterator[Repository]:
    """The repository whose master key ``key`` holds: cache opened and synced, signed and closed afterwards."""
    repo = Repository(backend, config, raw, key.master, key.slot_id, index_cache(backend, config))
    repo.key_problems = list(key.skipped)
    repo.journal.seen, repo.journal.seen_digest = key.seen, key.seen_digest
    try:
        if sync:
            repo.sync_index()
        yield repo
    finally:
        try:
            if repo.state_changed and sign_on_close:
                sign_manifest(repo)
        finally:
            repo.close()


@contextmanager
def open_repository(
    backend: Backend,
    password: str,
    *,
    sync: bool = True,
    sign_on_close: bool = True,
    manifest_key: str | None = None,
) -> Iterator[Repository]:
    """Unlock ``backend``'s repository and sync the index cache; close everything afterwards.

    If the committed state changed, the manifest is re-signed on close (``sign_on_close=False``
    only for tests that need an unsigned repository). ``manifest_key``: see :func:`unlock`.
    """
    config, raw = read_config(backend)
    key = unlock(backend, password.encode(), config, raw, manifest_key=manifest_key)
    with unlocked_repository(backend, config, raw, key, sync=sync, sign_on_close=sign_on_close) as repo:
        yield repo
