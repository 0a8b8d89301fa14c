"""The embedded control plane: the primary's SQLite control database shipped through the repository.

Shipping (:meth:`SqliteShipping.replicate`, with every replication cycle): SQLite's online backup
API copies the live database page by page into a private file — a consistent state even while
the scheduler writes — and that copy is backed up into the primary's repository as a snapshot
of :data:`~failover.controlplane.CONTROL_SYSTEM`. It is therefore encrypted and deduplicated
like any backup (a cycle adds only the pages that changed), its SHA-256 and row counts are
recorded, the signed manifest lists it so ``verify-offsite`` checks it without a key, and the
normal keyless replication ships it. Nothing of the control state ever travels in the clear.
Older copies are forgotten beyond the RPO window plus a day, never the newest two.

Crash safety comes from the repository: a snapshot is written last and is the commit, and
replication copies in commit order with the signed manifest last, so a process killed at any
point leaves the offsite with its previous copies, all listed and intact.

Promotion (:meth:`SqliteShipping.promote`, at a failover): the copies at the site are restored
newest first into a private directory beside the site's ``control_db``; the first whose file
has the recorded SHA-256, passes ``PRAGMA integrity_check`` and has the recorded row counts is
renamed into place. Whatever database was there is moved aside (``<file>.before-promotion-<id>``),
never deleted — unless it already is the promotion of that copy (a failover run again), which
is kept. The database is then upgraded to this bcpctl's schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from backup.errors import CorruptObject, VerificationFailed
from backup.repository import Repository
from backup.snapshot import Snapshot
from dc.config import Consortium
from dc.continuation import PROMOTED
from dc.errors import BcpError, ConfigError
from dc.failpoint import failpoint
from failover.controlplane import (
    CONTROL_SYSTEM,
    ControlCopy,
    ControlPlaneError,
    Promotion,
    RepositoryOpener,
    ShipResult,
    SkippedCopy,
    copy_age,
    copy_retention,
    measured_rpo,
    received_head,
    state_url,
)


def sqlite_path(url: str, field: str) -> Path:
    """The file of a ``sqlite:///`` URL; any other database is refused naming ``field``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise ConfigError(
            f"{field} is not a SQLite file: the shipped copy of a SQLite control database is restored into one "
            "(use sqlite:///PATH)"
        )
    return Path(parsed.database)


def _jst(when: datetime) -> str:
    from failover.calendar import JST

    return when.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST")


class SqliteShipping:
    """:class:`~failover.controlplane.ControlPlane` for a SQLite control database (module docstring)."""

    kind = "sqlite-shipping"

    def __init__(self, config: Consortium, config_dir: Path | None) -> None:
        self.config = config
        self.config_dir = config_dir

    @property
    def primary(self) -> str:
        return self.config.primary_site

    def database(self, site: str) -> Path:
        return sqlite_path(state_url(self.config, site), f"sites.{site}.control_db")

    # -- shipping -------------------------------------------------------------------------------

    def take_copy(self, *, now: datetime) -> tuple[ControlCopy, int, int]:
        """Snapshot the primary's control database into its repository: ``(copy, bytes added, forgotten)``.

        Needs the repository key, like every backup; shipping it afterwards does not.
        """
        from backup.forget import forget_snapshots
        from backup.jobs import site_repository
        from backup.run import BackupRequest, run_backup
        from backup.sources import parse_source

        path = self.database(self.primary)
        if not path.is_file():
            raise ControlPlaneError(f"the control database {path} does not exist yet: nothing to ship")
        request = BackupRequest(
            parse_source(f"sqlite:{path}"), system=CONTROL_SYSTEM, tags={"control_plane": self.kind}
        )
        with site_repository(self.config, self.primary, self.config_dir) as repo:
            result = run_backup(repo, request)
            if result.errors:
                raise ControlPlaneError(f"the control-state copy is incomplete: {result.errors[0]}")
            failpoint("control.copy.after-snapshot")
            decisions = forget_snapshots(repo, copy_retention(self.config), now=now, system=CONTROL_SYSTEM)
        forgotten = sum(1 for d in decisions if not d.keep)
        return ControlCopy(self.primary, result.time, result.snapshot_id), result.bytes_added, forgotten

    def replicate(self, *, now: datetime, sites: list[str] | None = None) -> ShipResult:
        """One replication cycle with the control state: a fresh copy, then keyless replication to each site."""
        from replication.jobs import replicate_sites
        from replication.sync import SyncOptions

        shipped = ShipResult(self.kind)
        try:
            shipped.copy, shipped.bytes_added, shipped.forgotten = self.take_copy(now=now)
        except BcpError as exc:
            # The systems' snapshots still ship; the job fails and says why the control state did not.
            shipped.problems.append(f"control state not copied: {exc.message}")
        for site in sites or self.config.offsite_sites:
            try:
                (run,) = replicate_sites(self.config, self.config_dir, SyncOptions(), site=site)
            except BcpError as exc:
                shipped.problems.append(f"{site}: {exc.message}")
                shipped.newest[site] = None
                continue
            shipped.runs.append(run)
            if problem := run.problem():
                shipped.problems.append(f"{site}: {problem}")
            there = next((lag.target_newest for lag in run.lag if lag.system == CONTROL_SYSTEM), None)
            shipped.newest[site] = ControlCopy(site, there) if there else None
        return shipped

    def newest_copy(self, site: str) -> ControlCopy | None:
        """From ``site``'s signed manifest, verified with the pinned key: no repository key needed."""
        from backup.manifest import read_manifest
        from replication.sync import read_source_config
        from storage.site import open_site

        backend = open_site(self.config, site, config_dir=self.config_dir)
        try:
            repo_config, _ = read_source_config(backend)
            manifest = read_manifest(backend, public_key=self._pinned_key(site, repo_config.id), repo_id=repo_config.id)
        finally:
            backend.close()
        if manifest is None:
            return None
        copies = [e for e in manifest.snapshots if e.system == CONTROL_SYSTEM]
        if not copies:
            return None
        newest = max(copies, key=lambda e: datetime.fromisoformat(e.time))
        return ControlCopy(site, datetime.fromisoformat(newest.time), newest.id)

    def lag(self, site: str, now: datetime) -> float | None:
        copy = self.newest_copy(site)
        return copy_age(copy.time if copy else None, now)

    def _pinned_key(self, site: str, repo_id: str) -> str | None:
        """The site's configured manifest key, else the one the local replication ledger pinned."""
        if key := self.config.sites[site].manifest_public_key:
            return key
        from dc.state import default_state_url, open_state
        from replication.ledger import Ledger

        url = self.config.control_db or default_state_url()
        if url.startswith("sqlite") and not sqlite_path(url, "control_db").is_file():
            return None  # opening would create an empty database here
        engine = open_state(url)
        try:
            pin = Ledger(engine).pin(repo_id)
        finally:
            engine.dispose()
        return pin.public_key if pin else None

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, site: str, *, open_repository: RepositoryOpener, declared_at: datetime, token: str) -> Promotion:
        path = self.database(site)
        promotion = Promotion(site, self.primary, str(path), "empty", declared_at, url=state_url(self.config, site))
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".{path.name}.promote-{token}"
        try:
            with open_repository() as repo:
                chosen, restored = self._newest_verified(repo, staging, promotion)
            if chosen is None:
                self._without_copy(promotion, path)
            else:
                promotion.copy = ControlCopy(site, chosen.time, chosen.id)
                promotion.rpo_seconds = measured_rpo(chosen.time, declared_at)
                earlier = _earlier_promotion(path, site, chosen) if path.exists() else None
                if earlier is not None:
                    promotion.source = "kept"
                    promotion.received_seq = int(earlier.get("received_seq") or 0)
                    promotion.received_hash = str(earlier.get("received_hash") or "")
                    promotion.received_at = earlier.get("received_at")
                else:
                    if path.exists():
                        promotion.kept_aside = _move_aside(path, token)
                        promotion.warnings.append(
                            f"the database at {path} was not this copy's promotion: kept as {promotion.kept_aside}"
                        )
                    assert restored is not None
                    os.replace(restored, path)
                    _fsync_dir(path.parent)
                    promotion.source = "restored"
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        promotion.schema_before, promotion.schema_after = _upgrade(promotion.url)
        if promotion.source != "kept":
            promotion.received_seq, promotion.received_hash, promotion.received_at = _head(promotion.url)
        return promotion

    def _without_copy(self, promotion: Promotion, path: Path) -> None:
        what = "no control-state copy" if not promotion.skipped else "no control-state copy that verifies"
        if path.exists():
            promotion.source = "kept"
            promotion.warnings.append(
                f"{what} at {promotion.site}: going on with the control database already at {path}; "
                "the control-plane RPO is not measured"
            )
        else:
            promotion.warnings.append(
                f"{what} at {promotion.site}: the control state starts empty at {path} (drill history, export "
                f"requests, partner tokens and the audit chain of {promotion.from_site} are not available)"
            )

    def _newest_verified(
        self, repo: Repository, staging: Path, promotion: Promotion
    ) -> tuple[Snapshot | None, Path | None]:
        """The newest copy that verifies, restored under ``staging``; newer ones that do not are recorded."""
        from backup.snapshot import list_snapshots

        errors: dict[str, str] = {}
        copies = list_snapshots(repo, system=CONTROL_SYSTEM, errors=errors)
        listed = _manifest_times(repo)
        unreadable = [SkippedCopy(sid, listed.get(sid), problem) for sid, problem in errors.items() if sid in listed]
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        chosen: Snapshot | None = None
        restored: Path | None = None
        for snap in reversed(copies):
            try:
                restored = restore_verified(repo, snap, staging / snap.id[:16])
            except (BcpError, sqlite3.Error, OSError) as exc:
                problem = exc.message if isinstance(exc, BcpError) else f"{type(exc).__name__}: {exc}"
                promotion.skipped.append(SkippedCopy(snap.id, snap.time, problem))
                continue
            chosen = snap
            break
        newer = [u for u in unreadable if chosen is None or u.time is None or u.time > chosen.time]
        promotion.skipped += newer
        promotion.skipped.sort(key=lambda s: s.time.timestamp() if s.time else float("inf"), reverse=True)
        if chosen is not None and promotion.skipped:
            bad = promotion.skipped[0]
            until = _jst(bad.time) if bad.time else "the newest copy"
            promotion.warnings.append(
                f"the newest control-state copy at {promotion.site} ({bad.snapshot_id[:8]}, taken {until}) does not "
                f"verify: {bad.problem}; using the copy taken {_jst(chosen.time)}: control changes between "
                f"{_jst(chosen.time)} and {until} are lost with it"
            )
        return chosen, restored


def restore_verified(repo: Repository, snap: Snapshot, folder: Path) -> Path:
    """Restore one control-state copy into ``folder`` and prove it: the database file it holds."""
    from backup.restorer import restore_snapshot
    from backup.tree import iter_tree

    folder.mkdir(mode=0o700)
    restore_snapshot(repo, snap, folder)
    files = [e for e in iter_tree(repo.read_blob, snap.tree) if e["type"] == "file"]
    if len(files) != 1:
        raise CorruptObject(f"control-state copy {snap.short_id} should hold one database file, holds {len(files)}")
    database = folder / str(files[0]["path"])
    check_database(database, str(files[0].get("sha256") or ""), snap.verify.get("tables", {}))
    return database


def check_database(path: Path, sha256: str, tables: dict[str, int]) -> None:
    """The file has the recorded SHA-256, passes ``PRAGMA integrity_check`` and has the recorded row counts."""
    from backup.dbrestore import compare_tables
    from backup.sources import sqlite_row_counts

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise VerificationFailed(
            f"restored control database has SHA-256 {digest.hexdigest()[:16]}…, the copy recorded {sha256[:16]}…"
        )
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = conn.execute("PRAGMA integrity_check").fetchall()
        counts = sqlite_row_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise VerificationFailed(f"restored control database does not open as SQLite: {exc}") from None
    finally:
        conn.close()
    if found != [("ok",)]:
        raise VerificationFailed(f"restored control database fails integrity_check: {found[0][0] if found else '?'}")
    mismatches = compare_tables(tables, counts)
    if mismatches:
        table, (want, got) = next(iter(mismatches.items()))
        raise VerificationFailed(f"restored control database: table {table} has {got} rows, the copy recorded {want}")


def _manifest_times(repo: Repository) -> dict[str, datetime]:
    """Control-state copies the signed manifest lists, with their times (also for unreadable ones)."""
    from backup.manifest import read_manifest, repository_public_key

    try:
        manifest = read_manifest(repo.backend, public_key=repository_public_key(repo), repo_id=repo.config.id)
    except BcpError:
        return {}
    if manifest is None:
        return {}
    return {e.id: datetime.fromisoformat(e.time) for e in manifest.snapshots if e.system == CONTROL_SYSTEM}


def _earlier_promotion(path: Path, site: str, chosen: Snapshot) -> dict[str, Any] | None:
    """The details of the promotion of ``chosen`` (or a newer copy) at ``site`` already in the database."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        rows = conn.execute("SELECT details FROM audit_log WHERE action = ? ORDER BY seq", (PROMOTED,)).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    for (text,) in rows:
        try:
            details = json.loads(text)
        except ValueError:
            continue
        copy_time = details.get("copy_time")
        if (
            details.get("site") == site
            and details.get("source") == "restored"
            and copy_time
            and (details.get("copy") == chosen.id or datetime.fromisoformat(copy_time) >= chosen.time)
        ):
            return dict(details)
    return None


def _move_aside(path: Path, token: str) -> str:
    """Move the database at ``path`` (with its WAL and shared-memory files) out of the way, never deleting it."""
    aside = path.with_name(f"{path.name}.before-promotion-{token}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        found = Path(f"{path}{suffix}")
        if found.exists():
            os.replace(found, Path(f"{aside}{suffix}"))
    _fsync_dir(path.parent)
    return str(aside)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _upgrade(url: str) -> tuple[str | None, str | None]:
    """Bring the promoted database to this bcpctl's schema: ``(revision before, after)``."""
    from dc import schema
    from dc.state import connect

    engine = connect(url)
    try:
        found = schema.status(engine)
        if found.state == "current":
            return found.revision, found.revision
        if found.state == "ahead":
            raise ControlPlaneError(
                f"the promoted control database is at revision {found.revision}, newer than this bcpctl "
                f"(up to {found.head}): run the bcpctl version of the primary"
            )
        result = schema.upgrade(engine)
        return result.before, result.after
    finally:
        engine.dispose()


def _head(url: str) -> tuple[int, str, str | None]:
    from dc.state import open_state

    engine = open_state(url)
    try:
        return received_head(engine)
    finally:
        engine.dispose()
