"""``wal push`` and ``wal get`` as a configured system's server runs them.

The server runs them itself (``archive_command``, ``restore_command``) with its own host's
configuration and credentials, so WAL never passes through the controller. They open the
repository of the site bcpctl runs at (``$BCPCTL_SITE``, default the primary) without syncing
the index cache: WAL objects are self-contained and a push must not cost a listing of every
index file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from backup.configsecret import config_password
from backup.opening import open_repository
from backup.repository import Repository
from backup.walarchive import PushResult, WalFile, get, push
from backup.walprefetch import from_spool, prefetch
from backup.walpushahead import from_record, push_ahead
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
def wal_repository(config: Consortium, config_dir: Path | None, site: str | None = None) -> Iterator[Repository]:
    """The repository of ``site`` (default: the site bcpctl runs at)."""
    from dc.config import local_site

    site = site or local_site(config)
    if site not in config.sites:
        raise UsageError(N_("unknown site '{site}' (known: {sites})"), site=site, sites=", ".join(config.sites))
    backend = open_site(config, site, config_dir=config_dir)
    password = config_password(config, config_dir, site)
    with open_repository(backend, password, sync=False, manifest_key=config.sites[site].manifest_public_key) as repo:
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
    """Archive ``path``; with a ``spool``, acknowledged from a previous push's record of these very
    bytes, and otherwise also archiving ``ahead`` segments already ready (backup/walpushahead.py)."""
    wal_system(config, system_id)
    if spool is not None and (recorded := from_record(system_id, path, spool)) is not None:
        return recorded
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
) -> WalFile:
    """``name`` into ``target``; with a ``spool``, from it when a previous get prefetched it, and
    otherwise prefetching the next ``prefetch_ahead`` segments there (backup/walprefetch.py)."""
    wal_system(config, system_id)
    if spool is not None and (found := from_spool(system_id, name, target, spool)) is not None:
        return found
    with wal_repository(config, config_dir, site) as repo:
        found = get(repo, system_id, name, target)
        if spool is not None:
            prefetch(repo, system_id, name, spool, prefetch_ahead)
        return found
