"""``wal push`` and ``wal get`` as a configured system's server runs them.

The server runs them itself (``archive_command``, ``restore_command``) with its own host's
configuration and credentials, so WAL never passes through the controller. They open the
repository of the site bcpctl runs at (``$BCPCTL_SITE``, default the primary) without syncing
the index cache: WAL objects are self-contained and a push must not cost a listing of every
index file. Where the configuration names a key file (``secrets.key_file`` or the site's own),
they unlock with it rather than the passphrase: one process per WAL file must not pay a
passphrase's Argon2id each time (backup/keyfile.py has the threat model).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING

from backup.configsecret import config_key_file, config_password
from backup.keyfile import open_with_key_file
from backup.opening import open_repository
from backup.repository import Repository
from backup.walarchive import PushResult, WalFile, get, push
from backup.walasync import DaemonReport, archive_ready, lock_spool
from backup.walprefetch import prefetch
from backup.walpushahead import push_ahead
from backup.waltablespace import guarded_get
from dc.errors import N_, UsageError
from storage.site import open_site

if TYPE_CHECKING:
    from dc.config import Consortium


def wal_system(config: Consortium, system_id: str) -> None:
    """Refuse a system that does not archive WAL: its WAL would be stored where nothing reads it."""
    system = config.system(system_id)
    if system.source.kind != "postgres-wal":
        raise UsageError(
            N_("system '{system_id}' is a {kind} source, not postgres-wal: it has no WAL archive"),
            system_id=system_id,
            kind=system.source.kind,
        )


@contextmanager
def wal_repository(
    config: Consortium, config_dir: Path | None, site: str | None = None, *, sync: bool = False
) -> Iterator[Repository]:
    """The repository of ``site`` (default: the site bcpctl runs at), opened with the site's key
    file when one is configured, else its passphrase; the index cache synced only if ``sync``."""
    from dc.config import local_site

    site = site or local_site(config)
    if site not in config.sites:
        raise UsageError(N_("unknown site '{site}' (known: {sites})"), site=site, sites=", ".join(config.sites))
    backend = open_site(config, site, config_dir=config_dir)
    pin = config.sites[site].manifest_public_key
    if (key_file := config_key_file(config, config_dir, site)) is not None:
        with open_with_key_file(backend, key_file, manifest_key=pin, sync=sync) as repo:
            yield repo
        return
    password = config_password(config, config_dir, site)
    with open_repository(backend, password, sync=sync, manifest_key=pin) as repo:
        yield repo


def wal_push(
    config: Consortium,
    config_dir: Path | None,
    system_id: str,
    path: Path,
    *,
    spool: Path | None = None,
    ahead: int = 0,
) -> PushResult:
    """Archive ``path``; with a ``spool``, also archive ``ahead`` segments already ready and record
    them there (backup/walpushahead.py). The caller has asked the spool first
    (:func:`backup.walspool.from_record`), before it read the configuration."""
    wal_system(config, system_id)
    with wal_repository(config, config_dir) as repo:
        result = push(repo, system_id, path)
        if spool is not None:
            push_ahead(repo, system_id, path, spool, ahead)
        return result


def wal_get(
    config: Consortium,
    config_dir: Path | None,
    system_id: str,
    name: str,
    target: Path,
    site: str | None = None,
    *,
    spool: Path | None = None,
    prefetch_ahead: int = 0,
    refuse_tablespaces_from: int | None = None,
) -> WalFile:
    """``name`` from the archive into ``target``; with a ``spool``, also prefetch the next
    ``prefetch_ahead`` segments there (backup/walprefetch.py). The caller has asked the spool
    first (:func:`backup.walspool.from_spool`), before it read the configuration.

    ``refuse_tablespaces_from``: a restore's get, which never hands over a segment creating a
    tablespace from that position on (backup/waltablespace.py; needs ``spool``)."""
    wal_system(config, system_id)
    with wal_repository(config, config_dir, site) as repo:
        if refuse_tablespaces_from is not None and spool is not None:
            found = guarded_get(repo, system_id, name, target, since=refuse_tablespaces_from, spool=spool)
        else:
            found = get(repo, system_id, name, target)
        if spool is not None:
            prefetch(repo, system_id, name, spool, prefetch_ahead)
        return found


def wal_push_daemon(
    config: Consortium,
    config_dir: Path | None,
    system_id: str,
    pg_data: Path,
    spool: Path,
    *,
    stop: Event,
    interval: float = 0.1,
) -> DaemonReport:
    """Archive ``pg_data``'s ready segments as they appear, recording each in ``spool``, until
    ``stop`` is set (backup/walasync.py); the spool is locked against a second daemon first."""
    wal_system(config, system_id)
    lock = lock_spool(spool)
    try:
        with wal_repository(config, config_dir) as repo:
            return archive_ready(
                repo, system_id, pg_data, spool, stopping=stop.is_set, pause=stop.wait, interval=interval
            )
    finally:
        os.close(lock)
