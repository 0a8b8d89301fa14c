"""The registry as of the newest snapshot at a site — normally the offsite replica.

An export must work when the primary data center is gone, so it never reads the live registry:
it restores the newest snapshot of the tenant's 住民基本台帳 system at the chosen site into a
private temporary directory (a SQLite registry) or a scratch database on the site's drill
server (a PostgreSQL registry), verifies it against what the backup recorded, and removes it
afterwards. The replication lag — how much newer the primary's newest snapshot is — is what a
disaster would cost right now, so the manifest states it; with the primary unreachable it is
"unknown", never a guess.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from sqlalchemy import Engine

from backup.dbrestore import restore_postgres, verify_sqlite
from backup.jobs import config_password, site_repository
from backup.opening import open_repository
from backup.repository import Repository, read_config
from backup.restorer import restore_snapshot
from backup.snapshot import Snapshot, list_snapshots
from backup.sources import redact_dsn
from dc.config import Consortium
from dc.errors import N_, BcpError, Message
from storage.site import open_site
from victim_support.errors import RegistryError
from victim_support.schema import open_registry, registry_lg_code


@dataclass(frozen=True)
class RegistrySource:
    site: str
    system: str
    snapshot_id: str
    #: the snapshot's time: what the export reflects.
    as_of: datetime
    #: newest primary snapshot minus ``as_of``; ``None`` when the primary cannot be reached.
    lag_seconds: float | None
    primary_newest: datetime | None


def primary_newest(
    config: Consortium,
    system_id: str,
    config_dir: Path | None,
    unlocked: Repository | None = None,
) -> datetime | None:
    """The newest snapshot time of ``system_id`` at the primary, or ``None`` if it cannot be read.

    The offsite copy is a replica of the same repository (same id, same key slots), so the
    already-unlocked master key reads the primary's snapshot list too; that saves a second
    Argon2id unlock (~0.3 s of CPU) on every build. Another repository falls back to the passphrase.
    """
    try:
        backend = open_site(config, config.primary_site, config_dir=config_dir)
        try:
            repo_config, raw = read_config(backend)
            if unlocked is not None and repo_config.id == unlocked.config.id:
                view = Repository(backend, repo_config, raw, unlocked.master, unlocked.slot_id, unlocked.cache)
                snaps = list_snapshots(view, system=system_id)  # the view shares the cache: never close it
            else:
                password = config_password(config, config_dir, config.primary_site)
                with open_repository(backend, password, sync=False) as repo:
                    snaps = list_snapshots(repo, system=system_id)
        finally:
            backend.close()
    except (BcpError, OSError):
        return None
    return snaps[-1].time if snaps else None


@contextmanager
def registry_snapshot(
    config: Consortium,
    system_id: str,
    site: str,
    *,
    tenant_lg_code: str,
    config_dir: Path | None = None,
) -> Iterator[tuple[Engine, RegistrySource]]:
    """Yield a read-only engine on the newest snapshot of ``system_id`` at ``site``, then remove it."""
    with ExitStack() as stack:
        with site_repository(config, site, config_dir) as repo:
            snaps = list_snapshots(repo, system=system_id)
            if not snaps:
                raise RegistryError(
                    N_("no snapshot of {system_id} at site {site} ({url})"),
                    system_id=system_id,
                    site=site,
                    url=repo.backend.url,
                )
            snap = snaps[-1]
            if snap.source_kind == "sqlite":
                target = _restore_sqlite(stack, repo, snap)
            elif snap.source_kind == "postgres":
                target = _restore_postgres(stack, repo, snap, config, site)
            else:
                raise RegistryError(
                    N_("snapshot {short_id} of {system_id} is a {source_kind} backup, not a DB"),
                    short_id=snap.short_id,
                    system_id=system_id,
                    source_kind=snap.source_kind,
                )
            if site == config.primary_site:
                newest: datetime | None = snap.time
            else:
                newest = primary_newest(config, system_id, config_dir, unlocked=repo)
        lag = None if newest is None else max(0.0, (newest - snap.time).total_seconds())
        engine = open_registry(target, read_only=True)
        stack.callback(engine.dispose)
        found = registry_lg_code(engine)
        if found != tenant_lg_code:
            raise RegistryError(
                N_("snapshot {short_id} of {system_id} holds the registry of {found}, not {tenant_lg_code}"),
                short_id=snap.short_id,
                system_id=system_id,
                found=found or Message(N_("an unknown municipality")),
                tenant_lg_code=tenant_lg_code,
            )
        yield engine, RegistrySource(site, system_id, snap.id, snap.time, lag, newest)


_TMP_PREFIX = "bcpctl-export-"


def sweep_stale_restores(root: Path | None = None) -> list[Path]:
    """Remove restored registries left by builds that died (killed, power loss) before cleaning up.

    Each build's directory carries its process id; one whose process is gone still holds a full
    registry with every 個人番号 in plain text, so the next build removes it.
    """
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*"):
        pid_text = path.name.removeprefix(_TMP_PREFIX).split("-", 1)[0]
        try:
            if not pid_text.isdigit() or path.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except (PermissionError, FileNotFoundError):
            continue
    return removed


def _restore_sqlite(stack: ExitStack, repo: Repository, snap: Snapshot) -> str:
    # A private directory (mkdtemp is 0700): the restored file holds every resident's 個人番号.
    sweep_stale_restores()
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{_TMP_PREFIX}{os.getpid()}-")))
    restore_snapshot(repo, snap, tmp / "restore")
    files = [p for p in (tmp / "restore").rglob("*") if p.is_file()]
    if len(files) != 1:
        raise RegistryError(
            N_("snapshot {short_id} should hold one SQLite file, holds {n_files}"),
            short_id=snap.short_id,
            n_files=len(files),
        )
    mismatches = verify_sqlite(snap, files[0])
    if mismatches:
        table, (want, got) = next(iter(mismatches.items()))
        raise RegistryError(
            N_("restored registry table {table} has {got} rows, the backup recorded {want}"),
            table=table,
            got=got,
            want=want,
        )
    return str(files[0])


def _restore_postgres(stack: ExitStack, repo: Repository, snap: Snapshot, config: Consortium, site: str) -> str:
    admin = config.sites[site].drill_dsn
    if not admin:
        raise RegistryError(N_("site {site} has no drill_dsn to restore the PostgreSQL registry into"), site=site)
    dsn = stack.enter_context(scratch_database(admin))
    restore_postgres(repo, snap, dsn)
    return dsn


@contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    """A new empty database on the drill server, dropped (even if in use) afterwards."""
    import psycopg
    from psycopg import sql

    if not admin_dsn.startswith("postgresql://"):
        raise RegistryError(N_("drill_dsn must be a postgresql:// URL to restore a registry into"))
    name = f"bcpctl_export_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=15) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RegistryError(
            N_("cannot create a scratch database on {admin_dsn}: {detail}"),
            admin_dsn=redact_dsn(admin_dsn),
            detail=detail,
        ) from None
    try:
        yield urlunparse(urlparse(admin_dsn)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=15) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
