"""Backups driven by the consortium configuration, recorded in the control database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backup.anomaly import HISTORY, Signals, judge, signals_of
from backup.archiver import ProgressFn
from backup.configsecret import config_password
from backup.errors import SourceError
from backup.opening import open_repository
from backup.repository import Repository
from backup.run import BackupRequest, BackupResult, run_backup
from backup.sources import parse_source
from dc.errors import BcpError, joined, message_of
from storage.site import open_site

if TYPE_CHECKING:  # SQLAlchemy and the pydantic models are slow to import: `backup run --source` needs neither
    from sqlalchemy import Engine

    from backup.keyring import KeyRing
    from dc.config import Consortium


@contextmanager
def site_repository(
    config: Consortium,
    site: str,
    config_dir: Path | None = None,
    *,
    keyring: KeyRing | None = None,
    sign_now: bool = False,
) -> Iterator[Repository]:
    """The repository of ``site``, unlocked with the configured passphrase (closed on exit).

    ``keyring``: ``serve``'s held keys, so a scheduled job does not derive the key again; the
    manifest is then signed in batches (:meth:`backup.keyring.KeyRing.open`), now if ``sign_now``.
    """
    backend = open_site(config, site, config_dir=config_dir)
    pinned = config.sites[site].manifest_public_key
    password = config_password(config, config_dir, site)
    if keyring is None:
        with open_repository(backend, password, manifest_key=pinned) as repo:
            yield repo
        return
    with keyring.open(backend, password, manifest_key=pinned, sign_now=sign_now) as repo:
        yield repo


@dataclass(frozen=True)
class SystemBackup:
    system: str
    ok: bool
    result: BackupResult | None
    error: str | None
    #: why this backup looked like mass encryption (:mod:`backup.anomaly`), when it did
    anomaly: str | None = None
    #: with an anomaly: the snapshot before it, the last known good state
    last_known_good: str | None = None
    signals: Signals | None = None


def resolve_path(value: str, config_dir: Path | None) -> str:
    if config_dir is not None and not os.path.isabs(value):
        return str(config_dir / value)
    return value


def system_request(config: Consortium, system_id: str, config_dir: Path | None = None) -> BackupRequest:
    """The backup of ``system_id`` that its configured source asks for."""
    system = config.system(system_id)
    source = system.source
    value = resolve_path(source.value(), config_dir) if source.kind in ("path", "sqlite") else source.value()
    return BackupRequest(
        parse_source(f"{source.kind}:{value}"), system=system_id, tenant=system.tenant, exclude=source.exclude
    )


def backup_systems(
    config: Consortium,
    repo: Repository,
    systems: list[str] | None,
    *,
    state: Engine | None = None,
    config_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> list[SystemBackup]:
    """Back up the selected systems (all by default) one after another; one failure does not stop the rest."""
    from dc.clock import utcnow

    selected = systems or list(config.systems)
    outcomes = []
    for system_id in selected:
        request = system_request(config, system_id, config_dir)
        started = utcnow()
        try:
            result = run_backup(repo, request, progress=progress)
            outcome = SystemBackup(system_id, not result.errors, result, joined(result.errors[:3]) or None)
        except (BcpError, SourceError) as exc:
            result, outcome = None, SystemBackup(system_id, False, None, message_of(exc))
        if result is not None and outcome.ok:
            outcome = _judged(state, system_id, result, outcome)
        if state is not None:
            record_run(state, repo.backend.url, request, started, outcome)
        outcomes.append(outcome)
    return outcomes


def _judged(state: Engine | None, system_id: str, result: BackupResult, outcome: SystemBackup) -> SystemBackup:
    """The outcome with its ransomware signals, judged against the system's recorded history."""
    from dataclasses import replace

    signals = signals_of(
        raw_added=result.raw_bytes_added,
        stored_added=result.bytes_added,
        bytes_total=result.bytes_total,
        files_changed=result.files_new + result.files_changed,
        files_total=result.files_new + result.files_changed + result.files_unmodified,
        files_typed=result.files_typed,
        files_type_lost=result.files_type_lost,
    )
    verdict = judge(signal_history(state, system_id), signals) if state is not None else None
    if verdict is None or not verdict.anomalous:
        return replace(outcome, signals=signals)
    return replace(outcome, signals=signals, anomaly=verdict.reason, last_known_good=result.parent)


def signal_history(state: Engine, system_id: str) -> list[Signals]:
    """The system's recorded signals of successful backups, oldest first."""
    from sqlalchemy import select

    from dc.state import backup_runs

    t = backup_runs.c
    query = (
        select(t.compressibility, t.new_fraction, t.changed_fraction, t.type_lost_fraction)
        .where(t.system == system_id, t.ok.is_(True), t.anomaly.is_(None))
        .order_by(t.id.desc())
        .limit(HISTORY)
    )
    with state.connect() as conn:
        rows = conn.execute(query).all()
    return [Signals(*row) for row in reversed(rows)]


def record_run(state: Engine, repository: str, request: BackupRequest, started: object, outcome: SystemBackup) -> None:
    from sqlalchemy import insert, update
    from sqlalchemy.exc import IntegrityError

    from dc.clock import utcnow
    from dc.state import backup_latest, backup_runs, inserted_id
    from dc.storedmessages import column_text

    result = outcome.result
    finished = utcnow()
    with state.begin() as conn:
        run_id = inserted_id(
            conn.execute(
                insert(backup_runs).values(
                    system=request.system,
                    tenant=request.tenant,
                    repository=repository,
                    source=request.source.display,
                    snapshot_id=result.snapshot_id if result else None,
                    started_at=started,
                    finished_at=finished,
                    ok=outcome.ok,
                    bytes_in=result.bytes_read if result else 0,
                    bytes_added=result.bytes_added if result else 0,
                    seconds=result.seconds if result else 0.0,
                    error=str(outcome.error) if outcome.error else None,
                    error_message=column_text(outcome.error) if outcome.error else None,
                    compressibility=outcome.signals.compressibility if outcome.signals else None,
                    new_fraction=outcome.signals.new_fraction if outcome.signals else None,
                    changed_fraction=outcome.signals.changed_fraction if outcome.signals else None,
                    type_lost_fraction=outcome.signals.type_lost if outcome.signals else None,
                    anomaly=outcome.anomaly,
                    last_known_good=outcome.last_known_good,
                )
            )
        )
        if request.system is None:
            return
        values: dict[str, object] = {"tenant": request.tenant, "last_run_id": run_id, "last_ok": outcome.ok}
        if outcome.ok:
            values |= {
                "ok_run_id": run_id,
                "ok_finished_at": finished,
                "ok_seconds": result.seconds if result else 0.0,
                "ok_bytes_in": result.bytes_read if result else 0,
                "ok_bytes_added": result.bytes_added if result else 0,
                "ok_anomaly": outcome.anomaly is not None,
            }
        where = (backup_latest.c.system == request.system) & (backup_latest.c.repository == repository)
        if conn.execute(update(backup_latest).where(where).values(**values)).rowcount == 0:
            try:
                with conn.begin_nested():  # a CLI backup of the same system may insert it first
                    conn.execute(insert(backup_latest).values(system=request.system, repository=repository, **values))
            except IntegrityError:
                conn.execute(update(backup_latest).where(where).values(**values))
