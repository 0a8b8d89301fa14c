"""Master keys held unlocked for the life of a long-running process (``bcpctl serve``).

Deriving the key-encryption key (Argon2id, 64 MiB × 3 passes) is deliberately expensive: it
is what a stolen key slot costs an attacker per guess. Paid once per command it is invisible;
paid once per scheduled job it was about half of a controller's CPU (issue 23). So ``serve``
unlocks each repository once and keeps the master key here until it stops; the CLI never
uses a key ring and unlocks per command as before.

The held key lives in a ``ctypes`` buffer that is ``mlock``-ed where the system allows it
(``RLIMIT_MEMLOCK``; a denied lock is reported by :attr:`KeyRing.locked`, never fatal), so it
is not written to swap, and is overwritten with zeros when the ring is closed. What a job
builds from it (the :class:`~backup.crypto.MasterKey` of one open repository, the ciphers
that OpenSSL derives) are ordinary Python objects for the length of that job: CPython gives
no way to pin or wipe them.

A held key is reused only for the same repository, the same ``config`` object (its SHA-256,
which every slot binds) and the same passphrase; anything else unlocks afresh.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from backup.crypto import MasterKey
from backup.keys import Unwrapped, config_digest
from backup.manifest import Manifest, public_key_hex, sign_manifest, signing_key
from backup.manifestchain import Link
from backup.manifestmemo import ManifestMemo
from backup.manifeststate import Journal
from backup.opening import unlock, unlocked_repository
from backup.repository import RepoConfig, Repository, read_config
from storage.backend import Backend

log = logging.getLogger("bcpctl.keyring")

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
except OSError:  # no C library to ask: keys are held unlocked, and the ring says so
    _libc = None
if _libc is not None:
    for _name in ("mlock", "munlock"):
        getattr(_libc, _name).argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        getattr(_libc, _name).restype = ctypes.c_int


class LockedBuffer:
    """Bytes in memory that is ``mlock``-ed if the system allows it, zeroed by :meth:`wipe`."""

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        self._buf = ctypes.create_string_buffer(self.size)
        self.locked = _libc is not None and _libc.mlock(ctypes.addressof(self._buf), self.size) == 0
        ctypes.memmove(self._buf, data, self.size)

    def value(self) -> bytes:
        return self._buf.raw

    def wipe(self) -> None:
        ctypes.memset(self._buf, 0, self.size)
        if self.locked and _libc is not None:
            _libc.munlock(ctypes.addressof(self._buf), self.size)
            self.locked = False


@dataclass
class _Held:
    config_digest: bytes
    #: SHA-256 of the passphrase that opened it: a changed passphrase file unlocks afresh
    secret_digest: bytes
    key: LockedBuffer
    slot_id: str
    slot_digest: str
    skipped: tuple
    #: the public key the repository's manifests are signed with (derived from the held key)
    public_key: str
    #: :attr:`~backup.keys.Unwrapped.seen` of the unlock that put it here
    seen: int | None
    seen_digest: str


class KeyRing:
    """Thread-safe; concurrent first unlocks of one repository derive its key once."""

    def __init__(self, *, sign_every: float = 60.0) -> None:
        self._held: dict[tuple[str, str], _Held] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._closed = False
        #: seconds a change may wait for the manifest's signature (see :meth:`open`)
        self.sign_every = sign_every
        #: repository URL → when its oldest unsigned change was made (monotonic)
        self._dirty: dict[str, float] = {}
        #: the manifest each repository's last signature here stored, not re-verified by the next
        self._memo: ManifestMemo[Manifest | Link] = ManifestMemo()
        #: repository URL → what its jobs committed since its last signature here (format 2 signs it)
        self._journals: dict[str, Journal] = {}

    def unlock(
        self, backend: Backend, secret: bytes, config: RepoConfig, raw: bytes, *, manifest_key: str | None = None
    ) -> Unwrapped:
        """:func:`backup.opening.unlock`, once per repository, config and passphrase."""
        where = (backend.url, config.id)
        digest, secret_digest = config_digest(raw), hashlib.sha256(secret).digest()
        with self._guard:
            if self._closed:
                raise RuntimeError("the key ring was closed")
            lock = self._locks.setdefault(where, threading.Lock())
        with lock:
            held = self._held.get(where)
            if (
                held is not None
                and secrets.compare_digest(held.config_digest, digest)
                and secrets.compare_digest(held.secret_digest, secret_digest)
            ):
                master = MasterKey.from_bytes(held.key.value())
                return Unwrapped(master, held.slot_id, held.skipped, held.slot_digest, held.seen, held.seen_digest)
            unlocked = unlock(backend, secret, config, raw, manifest_key=manifest_key)
            with self._guard:
                if self._closed:
                    return unlocked  # closed meanwhile: this one job still runs, nothing is kept
                if held is not None:
                    held.key.wipe()
                buffer = LockedBuffer(unlocked.master.to_bytes())
                if not buffer.locked:
                    log.warning("the key of %s is held in memory that may be swapped (mlock refused)", backend.url)
                self._held[where] = _Held(
                    digest,
                    secret_digest,
                    buffer,
                    unlocked.slot_id,
                    unlocked.slot_digest,
                    unlocked.skipped,
                    public_key_hex(signing_key(unlocked.master, config.id)),
                    unlocked.seen,
                    unlocked.seen_digest,
                )
            return unlocked

    @contextmanager
    def open(
        self, backend: Backend, password: str, *, manifest_key: str | None = None, sign_now: bool = False
    ) -> Iterator[Repository]:
        """:func:`backup.opening.open_repository` with the key held here, signing in batches.

        The manifest is signed when the oldest change it lacks is :attr:`sign_every` seconds old
        (or ``sign_now``), not at every close: a format-1 signature lists every snapshot and
        writes a manifest naming them all, linear in the repository, and a controller closes a
        repository after every one of its ~0.75 backups a second. In format 2 the signature is
        one link holding what the jobs' journals noted since the last one (merged here, since a
        deferred signature runs in whichever job comes due). Replication copies a snapshot younger than its
        ``unsigned_grace`` (10 min) only once it is signed, so what ``verify-offsite`` proves
        is unchanged; the window bounds how long a new snapshot waits for its signature.
        """
        config, raw = read_config(backend)
        key = self.unlock(backend, password.encode(), config, raw, manifest_key=manifest_key)
        with unlocked_repository(backend, config, raw, key, sync=True, sign_on_close=False) as repo:
            # the link signed here last is newer than the head the first unlock read, and both were
            # stored before this job writes anything (backup/chainsign.py ``_signed_away``)
            signed = self._memo.position(backend.url, config.id, self._public_key(backend.url, config.id, key))
            if signed is not None and (repo.journal.seen is None or signed[0] > repo.journal.seen):
                repo.journal.seen, repo.journal.seen_digest = signed
            try:
                yield repo
            finally:
                self._sign_if_due(repo, sign_now)

    def _public_key(self, url: str, repo_id: str, key: Unwrapped) -> str:
        with self._guard:
            held = self._held.get((url, repo_id))
        if held is not None and secrets.compare_digest(held.key.value(), key.master.to_bytes()):
            return held.public_key
        return public_key_hex(signing_key(key.master, repo_id))  # not the held key: closed or replaced meanwhile

    def _sign_if_due(self, repo: Repository, sign_now: bool) -> None:
        where = repo.backend.url
        now = time.monotonic()
        with self._guard:
            if repo.state_changed:
                self._dirty.setdefault(where, now)
            pending = self._journals.setdefault(where, Journal())
            pending.absorb(repo.journal)
            repo.journal.clear()
            since = self._dirty.get(where)
            if since is None or not (sign_now or now - since >= self.sign_every):
                return
            del self._dirty[where]
            batch = pending.take()
        try:
            sign_manifest(repo, memo=self._memo, journal=batch)
        except BaseException:
            with self._guard:
                self._dirty.setdefault(where, since)
                self._journals.setdefault(where, Journal()).absorb(batch)
            raise

    def unsigned(self, *, due_only: bool = True) -> set[str]:
        """URLs of repositories with changes their manifest lacks (only those due for signing)."""
        now = time.monotonic()
        with self._guard:
            return {url for url, since in self._dirty.items() if not due_only or now - since >= self.sign_every}

    def locked(self) -> dict[str, bool]:
        """Repository URL → whether its held key is ``mlock``-ed (False: the system refused)."""
        with self._guard:
            return {url: held.key.locked for (url, _id), held in self._held.items()}

    def __len__(self) -> int:
        with self._guard:
            return len(self._held)

    def close(self) -> None:
        """Overwrite every held key and forget it; later unlocks are refused."""
        with self._guard:
            self._closed = True
            for held in self._held.values():
                held.key.wipe()
            self._held.clear()
