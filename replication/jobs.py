"""Replication driven by URLs or by the consortium configuration: open, run, close.

The one place that turns sites and options into open backends, the control-database ledger
and :class:`~replication.sync.SyncOptions`, so commands and the scheduler stay thin. Each
backend is opened with what its site says (``known_hosts`` for SFTP, ``object_lock_days``,
``manifest_public_key``, ``delete_delay`` for the offsite) and always closed afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dc.errors import N_, BcpError, ConfigError, Message, UsageError
from replication.plan import DEFAULT_DELETE_DELAY
from replication.sync import SyncOptions, SyncProgress, SyncResult, read_source_config, replicate
from storage.backend import Backend
from storage.site import site_known_hosts, site_spec
from storage.url import open_backend

if TYPE_CHECKING:  # the configuration, verify and repair modules (pydantic, yaml) load only where used
    import threading

    from backup.manifest import Manifest
    from dc.config import Consortium, Site
    from replication.follow import FollowOptions, FollowRound, FollowSummary
    from replication.ledger import Ledger
    from replication.repair import RepairResult
    from replication.verify import IntegrityReport


@dataclass(frozen=True)
class Endpoint:
    """A repository location and how to reach it."""

    url: str
    known_hosts: str | None = None


@contextmanager
def _opened(endpoint: Endpoint, *, create: bool = False, connections: int = 16) -> Iterator[Backend]:
    backend = open_backend(endpoint.url, create=create, known_hosts=endpoint.known_hosts, connections=connections)
    try:
        yield backend
    finally:
        backend.close()


def open_ledger(state_url: str | None = None) -> Ledger:
    """The replication ledger in the control database (SQLAlchemy is imported here, when needed)."""
    from dc.state import open_state
    from replication.ledger import Ledger

    return Ledger(open_state(state_url))


def replicate_between(
    source: Endpoint,
    target: Endpoint,
    options: SyncOptions,
    *,
    state_url: str | None = None,
    ledger: Ledger | None = None,
    progress: SyncProgress | None = None,
) -> SyncResult:
    """``bcpctl replicate --from URL --to URL``; ``ledger`` defaults to one opened on ``state_url``."""
    if ledger is None:
        ledger = open_ledger(state_url)
    with (
        _opened(source, connections=options.jobs + 2) as src,
        _opened(target, create=True, connections=options.jobs + 2) as tgt,
    ):
        return replicate(src, tgt, ledger, options, progress=progress)


def follow_between(
    source: Endpoint,
    target: Endpoint,
    options: SyncOptions,
    follow_options: FollowOptions,
    *,
    stop: threading.Event,
    report: Callable[[FollowRound], None],
    state_url: str | None = None,
    ledger: Ledger | None = None,
) -> FollowSummary:
    """``bcpctl replicate --follow``: :func:`replication.follow.follow` on backends opened once."""
    from replication.follow import follow

    if ledger is None:
        ledger = open_ledger(state_url)
    with (
        _opened(source, connections=options.jobs + 2) as src,
        _opened(target, create=True, connections=options.jobs + 2) as tgt,
    ):
        return follow(src, tgt, ledger, options, follow_options, stop=stop, report=report)


def repair_between(
    source: Endpoint | None,
    damaged: Endpoint,
    *,
    pinned_key: str | None = None,
    jobs: int = 4,
    lock_days: int = 0,
    state_url: str | None = None,
) -> RepairResult:
    """``bcpctl replicate --repair --to DAMAGED [--from OTHER]``: put back what DAMAGED lost.

    Without ``source`` only the storage's own version history can supply the right bytes.
    """
    from replication.repair import repair_repository

    ledger = open_ledger(state_url)
    with contextlib.ExitStack() as stack:
        bad = stack.enter_context(_opened(damaged, connections=jobs + 2))
        other = stack.enter_context(_opened(source, connections=jobs + 2)) if source else None
        repo_id = _repository_id(bad) or (read_source_config(other)[0].id if other else None)
        pin = ledger.pin(repo_id) if repo_id else None
        key = pinned_key or (pin.public_key if pin else None)
        return repair_repository(
            bad, other, pinned_key=key, min_sequence=pin.sequence if pin else 0, jobs=jobs, lock_days=lock_days
        )


def _repository_id(backend: Backend) -> str | None:
    """The repository id from the plain config, or ``None`` if the config is gone or unreadable.

    Where the storage keeps versions the config is read through its history, so an
    overwritten or deleted config still finds the pin of the repository it belongs to.
    """
    from replication.history import open_history

    try:
        return read_source_config(open_history(backend) or backend)[0].id
    except BcpError:
        return None


def verify_at(
    endpoint: Endpoint,
    *,
    pinned_key: str | None = None,
    read_data: bool = True,
    jobs: int = 4,
    state_url: str | None = None,
    progress: Callable[[int], None] | None = None,
    delete_delay: timedelta = DEFAULT_DELETE_DELAY,
    as_of: datetime | None = None,
) -> IntegrityReport:
    """``bcpctl verify-offsite`` (and ``check --integrity-only``): keyless, pins from the control DB."""
    from replication.verify import unpinned_stranger, verify_repository

    ledger = open_ledger(state_url)
    with _opened(endpoint, connections=jobs + 2) as backend:
        repo_id = _repository_id(backend)
        pin = ledger.pin(repo_id) if repo_id else None
        key = pinned_key or (pin.public_key if pin else None)
        # the pin is found by the id in ``config``, which whoever can write the storage can replace
        stranger = repo_id is not None and pin is None and ledger.replicated_to(backend.url)
        report = verify_repository(
            backend,
            pinned_key=key,
            min_sequence=pin.sequence if pin else 0,
            accepted_sha256=pin.manifest_sha256 if pin else "",
            read_data=read_data,
            jobs=jobs,
            progress=progress,
            delete_delay=delete_delay,
            as_of=as_of,
        )
    if stranger and repo_id is not None:
        report.problems.insert(0, unpinned_stranger(repo_id))
        report.ok = False
    return report


def show_manifest(endpoint: Endpoint, *, pinned_key: str | None = None, state_url: str | None = None) -> Manifest:
    """The verified manifest at ``endpoint`` (pinned key from the option or the control DB)."""
    from backup.manifest import read_manifest

    ledger = open_ledger(state_url)
    with _opened(endpoint) as backend:
        config, _ = read_source_config(backend)
        pin = ledger.pin(config.id)
        found = read_manifest(backend, public_key=pinned_key or (pin.public_key if pin else None), repo_id=config.id)
    if found is None:
        raise UsageError(
            N_("{url} has no signed manifest (run 'bcpctl manifest sign' at the primary)"), url=endpoint.url
        )
    return found


def site_endpoint(config: Consortium, name: str, config_dir: Path | None) -> tuple[Site, Endpoint]:
    """A site as a replication endpoint: its configuration, URL and pinned host keys (storage.site)."""
    site = site_spec(config, name)
    return site, Endpoint(site.repository, site_known_hosts(site, config_dir))


def site_options(
    site: Site, base: SyncOptions, *, object_lock_days: int | None, delete_delay: timedelta | None
) -> SyncOptions:
    """The offsite's own settings, unless the command line overrides them."""
    return replace(
        base,
        object_lock_days=site.object_lock_days if object_lock_days is None else object_lock_days,
        delete_delay=timedelta(seconds=site.delete_delay) if delete_delay is None else delete_delay,
        pinned_key=base.pinned_key or site.manifest_public_key,
    )


def follow_site(
    config: Consortium,
    config_dir: Path | None,
    base: SyncOptions,
    follow_options: FollowOptions,
    *,
    stop: threading.Event,
    report: Callable[[FollowRound], None],
    site: str | None = None,
    object_lock_days: int | None = None,
    delete_delay: timedelta | None = None,
) -> FollowSummary:
    """``bcpctl replicate --follow --config FILE [--site S]``: primary → one offsite site, until stopped."""
    targets = [site] if site else config.offsite_sites
    if len(targets) != 1:
        raise UsageError(
            N_(
                "--follow ships to one offsite site: give --site NAME (offsite sites: {sites}); run one "
                "follower per site"
            ),
            sites=", ".join(targets) or Message(N_("none")),
        )
    _, source = site_endpoint(config, config.primary_site, config_dir)
    target_site, target = site_endpoint(config, targets[0], config_dir)
    if targets[0] == config.primary_site:
        raise ConfigError(N_("site '{site}' is the primary; replicate to an offsite site"), site=targets[0])
    options = site_options(target_site, base, object_lock_days=object_lock_days, delete_delay=delete_delay)
    return follow_between(
        source, target, options, follow_options, stop=stop, report=report, ledger=open_ledger(config.control_db)
    )


def replicate_sites(
    config: Consortium,
    config_dir: Path | None,
    base: SyncOptions,
    *,
    site: str | None = None,
    system: str | None = None,
    object_lock_days: int | None = None,
    delete_delay: timedelta | None = None,
    ledger: Ledger | None = None,
    progress: SyncProgress | None = None,
) -> list[SyncResult]:
    """``bcpctl replicate --config FILE [--site S] [--system ID]``: primary → each offsite site.

    ``ledger`` defaults to one opened on the configuration's control database.
    """
    if system is not None:
        config.system(system)
    targets = [site] if site else config.offsite_sites
    if not targets:
        raise ConfigError(N_("the configuration has no site with role: offsite to replicate to"))
    _, source = site_endpoint(config, config.primary_site, config_dir)
    ledger = ledger or open_ledger(config.control_db)
    results = []
    for name in targets:
        target_site, target = site_endpoint(config, name, config_dir)
        if name == config.primary_site:
            raise ConfigError(N_("site '{name}' is the primary; replicate to an offsite site"), name=name)
        options = site_options(target_site, base, object_lock_days=object_lock_days, delete_delay=delete_delay)
        result = replicate_between(source, target, options, ledger=ledger, progress=progress)
        if system is not None:
            result.lag = [lag for lag in result.lag if lag.system == system]
        results.append(result)
    return results
