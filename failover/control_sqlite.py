"""The embedded control plane: the active site's SQLite control database shipped through the repository.

Shipping (:meth:`SqliteShipping.replicate`, with every replication cycle): SQLite's online backup
API copies the live database page by page into a private file — a consistent state even while
the scheduler writes — and that copy is backed up into the active site's repository as a
snapshot of :data:`~failover.controlplane.CONTROL_SYSTEM`, tagged with the site it was taken
at. It is therefore encrypted and deduplicated like any backup (a cycle adds only the pages
that changed), its SHA-256 and row counts are recorded, the signed manifest lists it so
``verify-offsite`` checks it without a key, and the normal keyless replication ships it —
to every offsite site normally, to the second copy while failed over. Nothing of the control
state ever travels in the clear. Older copies are forgotten beyond the RPO window plus a day,
never the newest two.

Crash safety comes from the repository: a snapshot is written last and is the commit, and
replication copies in commit order with the signed manifest last, so a process killed at any
point leaves the target with its previous copies, all listed and intact.

Promotion (:meth:`SqliteShipping.promote`, at a failover): the copies of the old site's state
at the site are restored newest first into a private directory beside the site's
``control_db``; the first that proves itself (:mod:`failover.control_copies`) is renamed into
place. Whatever database was there is moved aside (``<file>.before-promotion-<id>``), never
deleted — unless it already is the promotion of that copy (a failover run again), which is
kept. The database is then upgraded to this bcpctl's schema.

Handover (:meth:`SqliteShipping.hand_over`, at failback, the old site's writes stopped): one
last copy of the active site's database, shipped to the target (never deleting there) and
promoted as above — that copy and no other, so nothing written before it is lost. The old
site's database is then moved aside (:meth:`SqliteShipping.follow`): the live state is back.
Two sites naming the same file share it: nothing moves.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from backup.repository import Repository
from backup.snapshot import Snapshot
from dc.clock import jst_text
from dc.config import Consortium
from dc.continuation import PROMOTED
from dc.errors import N_, BcpError, ConfigError, Message, library_reason, message_of, os_reason
from dc.failpoint import failpoint
from failover.control_copies import database_entry, manifest_times, move_aside, put_in_place, restore_verified
from failover.controlplane import (
    CONTROL_SYSTEM,
    COPY_SITE_TAG,
    ControlCopy,
    ControlPlaneError,
    Cycle,
    Promotion,
    PromotionOrder,
    ShipResult,
    SkippedCopy,
    copy_age,
    copy_retention,
    head_of,
    measured_rpo,
    serving,
    ship_each,
    state_url,
    upgrade_promoted,
)
from failover.copysign import sealer, unauthenticated_warning, verify_copy
from replication.ledger import Ledger


def sqlite_path(url: str, field: str) -> Path:
    """The file of a ``sqlite:///`` URL; any other database is refused naming ``field``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise ConfigError(
            N_(
                "{field} is not a SQLite file: the shipped copy of a SQLite control database is restored "
                "into one (use sqlite:///PATH)"
            ),
            field=field,
        )
    return Path(parsed.database)


def _jst(when: datetime) -> str:
    return jst_text(when, seconds=True)


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

    def copy_site(self, snap: Snapshot) -> str:
        """The site whose control state a copy holds (copies from before the tag: the primary's)."""
        return snap.tags.get(COPY_SITE_TAG, self.primary)

    # -- shipping -------------------------------------------------------------------------------

    def take_copy(self, *, now: datetime, site: str | None = None) -> tuple[ControlCopy, int, int]:
        """Snapshot ``site``'s control database (default: the primary's) into its repository:
        ``(copy, bytes added, forgotten)``. Needs the repository key, like every backup; shipping it
        afterwards does not."""
        from backup.forget import forget_snapshots
        from backup.jobs import site_repository
        from backup.run import BackupRequest, run_backup
        from backup.sources import parse_source

        site = site or self.primary
        path = self.database(site)
        if not path.is_file():
            raise ControlPlaneError(N_("the control database {path} does not exist yet: nothing to ship"), path=path)
        tags = {"control_plane": self.kind, COPY_SITE_TAG: site}
        seal = sealer(self.config, site, self.config_dir)
        request = BackupRequest(parse_source(f"sqlite:{path}"), system=CONTROL_SYSTEM, tags=tags, seal=seal)
        with site_repository(self.config, site, self.config_dir) as repo:
            result = run_backup(repo, request)
            if result.errors:
                raise ControlPlaneError(N_("the control-state copy is incomplete: {errors}"), errors=result.errors[0])
            failpoint("control.copy.after-snapshot")
            decisions = forget_snapshots(repo, copy_retention(self.config), now=now, system=CONTROL_SYSTEM)
        forgotten = sum(1 for d in decisions if not d.keep)
        return ControlCopy(site, result.time, result.snapshot_id), result.bytes_added, forgotten

    def replicate(self, cycle: Cycle) -> ShipResult:
        """One replication cycle with the control state: a fresh copy at the active site, then
        keyless replication to each site of its second copy."""
        source, targets = serving(self.config, cycle.active)
        shipped = ShipResult(self.kind, source)
        try:
            shipped.copy, shipped.bytes_added, shipped.forgotten = self.take_copy(now=cycle.now, site=source)
        except BcpError as exc:
            # The systems' snapshots still ship; the job fails and says why the control state did not.
            shipped.problems.append(Message(N_("control state not copied: {reason}"), reason=message_of(exc)))
        for site, run in ship_each(self.config, self.config_dir, cycle, shipped, targets):
            there = next((lag.target_newest for lag in run.lag if lag.system == CONTROL_SYSTEM), None) if run else None
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
        from dc.schema import ControlStateMissing
        from dc.state import open_state

        try:
            engine = open_state(self.config.control_db)
        except ControlStateMissing:
            return None
        try:
            pin = Ledger(engine).pin(repo_id)
        finally:
            engine.dispose()
        return pin.public_key if pin else None

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, site: str, order: PromotionOrder, from_site: str | None = None) -> Promotion:
        from_site = from_site or self.primary
        path = self.database(site)
        promotion = Promotion(site, from_site, str(path), "empty", order.declared_at, url=state_url(self.config, site))
        chosen = self._install(promotion, order, lambda snap: self.copy_site(snap) == from_site)
        if chosen is None:
            self._without_copy(promotion, path)
        promotion.schema_before, promotion.schema_after = upgrade_promoted(promotion.url)
        if promotion.source != "kept":
            promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(promotion.url)
        return promotion

    def _install(
        self, promotion: Promotion, order: PromotionOrder, wanted: Callable[[Snapshot], bool]
    ) -> Snapshot | None:
        """Put the newest wanted copy that proves itself at the site's ``control_db``: the copy, or
        ``None`` (then nothing at the site changed)."""
        path = Path(promotion.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".{path.name}.promote-{order.token}"
        try:
            with order.open_repository() as repo:
                chosen, restored = self._newest_verified(repo, staging, promotion, wanted)
            if chosen is None:
                return None
            promotion.copy = ControlCopy(promotion.site, chosen.time, chosen.id)
            promotion.rpo_seconds = measured_rpo(chosen.time, promotion.declared_at)
            earlier = _earlier_promotion(path, promotion.site, chosen) if path.exists() else None
            if earlier is not None:
                promotion.source = "kept"
                promotion.received_seq = int(earlier.get("received_seq") or 0)
                promotion.received_hash = str(earlier.get("received_hash") or "")
                promotion.received_at = earlier.get("received_at")
                return chosen
            if path.exists():
                promotion.kept_aside = move_aside(path, f"before-promotion-{order.token}")
                promotion.warnings.append(
                    Message(
                        N_("the database at {path} was not this copy's promotion: kept as {kept_aside}"),
                        path=path,
                        kept_aside=promotion.kept_aside,
                    )
                )
            assert restored is not None
            put_in_place(restored, path)
            promotion.source = "restored"
            return chosen
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _without_copy(self, promotion: Promotion, path: Path) -> None:
        what = (
            Message(N_("no control-state copy"))
            if not promotion.skipped
            else Message(N_("no control-state copy that verifies"))
        )
        if path.exists():
            promotion.source = "kept"
            promotion.warnings.append(
                Message(
                    N_(
                        "{what} at {site}: going on with the control database already at {path}; the "
                        "control-plane RPO is not measured"
                    ),
                    what=what,
                    site=promotion.site,
                    path=path,
                )
            )
        else:
            from dc.state import open_state

            # The one place besides bcpctl db upgrade that begins a control state: the site taking
            # over has nothing else to run on, and the warning says that it starts empty.
            open_state(promotion.url, create=True).dispose()
            promotion.warnings.append(
                Message(
                    N_(
                        "{what} at {site}: the control state starts empty at {path} (drill history, "
                        "export requests, partner tokens and the audit chain of {from_site} are not "
                        "available)"
                    ),
                    what=what,
                    site=promotion.site,
                    path=path,
                    from_site=promotion.from_site,
                )
            )

    def _newest_verified(
        self, repo: Repository, staging: Path, promotion: Promotion, wanted: Callable[[Snapshot], bool]
    ) -> tuple[Snapshot | None, Path | None]:
        """The newest wanted copy that verifies, restored under ``staging``; newer ones that do not are recorded."""
        from backup.snapshot import list_snapshots

        errors: dict[str, str] = {}
        copies = [snap for snap in list_snapshots(repo, system=CONTROL_SYSTEM, errors=errors) if wanted(snap)]
        listed = manifest_times(repo)
        unreadable = [SkippedCopy(sid, listed.get(sid), problem) for sid, problem in errors.items() if sid in listed]
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        chosen: Snapshot | None = None
        restored: Path | None = None
        public_key = self.config.sites[promotion.from_site].control_public_key
        if public_key is None:
            promotion.warnings.append(unauthenticated_warning(promotion.from_site))
        for snap in reversed(copies):
            try:
                if public_key is not None:
                    self._authenticate(repo, snap, public_key)
                restored = restore_verified(repo, snap, staging / snap.id[:16])
            except (BcpError, sqlite3.Error, OSError) as exc:
                problem = (
                    message_of(exc)
                    if isinstance(exc, BcpError)
                    else os_reason(exc)
                    if isinstance(exc, OSError)
                    else library_reason(exc)
                )
                promotion.skipped.append(SkippedCopy(snap.id, snap.time, problem))
                continue
            chosen = snap
            break
        newer = [u for u in unreadable if chosen is None or u.time is None or u.time > chosen.time]
        promotion.skipped += newer
        promotion.skipped.sort(key=lambda s: s.time.timestamp() if s.time else float("inf"), reverse=True)
        if chosen is not None and promotion.skipped:
            bad = promotion.skipped[0]
            until = _jst(bad.time) if bad.time else Message(N_("the newest copy"))
            promotion.warnings.append(
                Message(
                    N_(
                        "the newest control-state copy at {site} ({snapshot_id}, taken {until}) does "
                        "not verify: {problem}; using the copy taken {jst}: control changes between "
                        "{jst} and {until} are lost with it"
                    ),
                    site=promotion.site,
                    snapshot_id=bad.snapshot_id[:8],
                    until=until,
                    problem=bad.problem,
                    jst=_jst(chosen.time),
                )
            )
        return chosen, restored

    def _authenticate(self, repo: Repository, snap: Snapshot, public_key: str) -> None:
        """The copy is signed by its site's controller over exactly the file and row counts it records."""
        sha256 = str(database_entry(repo, snap).get("sha256") or "")
        verify_copy(public_key, snap.tags, self.copy_site(snap), snap.time, sha256, snap.verify.get("tables", {}))

    # -- failback -------------------------------------------------------------------------------

    def _shared(self, one: str, other: str) -> bool:
        return state_url(self.config, one) == state_url(self.config, other)

    def prepare_handover(self, from_site: str, to_site: str, *, token: str) -> list[str]:
        return []

    def hand_over(self, to_site: str, order: PromotionOrder, *, from_site: str) -> Promotion:
        """The last copy of ``from_site``'s state, shipped to ``to_site`` and promoted there — that
        copy only: an older one would lose what was written after it."""
        from dc.clock import utcnow
        from failover.secondcopy import ship_between
        from replication.jobs import open_ledger

        if self._shared(from_site, to_site):
            url = state_url(self.config, to_site)
            promotion = Promotion(to_site, from_site, str(self.database(to_site)), "kept", order.declared_at, url=url)
            promotion.planned = True
            promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(url)
            promotion.warnings.append(
                Message(
                    N_("{from_site} and {to_site} name the same control database: nothing moved"),
                    from_site=from_site,
                    to_site=to_site,
                )
            )
            return promotion
        copy, _added, _forgotten = self.take_copy(now=utcnow(), site=from_site)
        shipped = ship_between(
            self.config, self.config_dir, from_site, to_site, ledger=open_ledger(state_url(self.config, from_site))
        )
        if problem := shipped.problem():
            raise ControlPlaneError(
                N_("the control state of {from_site} did not reach {to_site}: {problem}"),
                from_site=from_site,
                to_site=to_site,
                problem=problem,
            )
        path = self.database(to_site)
        promotion = Promotion(
            to_site, from_site, str(path), "empty", order.declared_at, url=state_url(self.config, to_site)
        )
        promotion.planned = True
        if self._install(promotion, order, lambda snap: snap.id == copy.snapshot_id) is None:
            why = promotion.skipped[0].problem if promotion.skipped else Message(N_("not found there"))
            raise ControlPlaneError(
                N_(
                    "the last copy of {from_site}'s control state ({snapshot_id}) does not verify at "
                    "{to_site}: {why}; nothing at {to_site} was changed"
                ),
                from_site=from_site,
                snapshot_id=(copy.snapshot_id or "")[:8],
                to_site=to_site,
                why=why,
            )
        promotion.schema_before, promotion.schema_after = upgrade_promoted(promotion.url)
        if promotion.source != "kept":
            promotion.received_seq, promotion.received_hash, promotion.received_at = head_of(promotion.url)
        return promotion

    def follow(self, site: str, *, of: str, token: str) -> list[str]:
        """``site``'s database is no longer the live state: kept aside, so nothing there claims to be."""
        if self._shared(site, of):
            return []
        path = self.database(site)
        if not path.exists():
            return []
        aside = move_aside(path, f"after-handover-{token}")
        return [f"the control state lives at {of} again; {site}'s database is kept as {aside}"]


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
