"""What ``bcpctl serve`` runs, as data and callables: the controller, its metrics, health and readiness.

HTTP is not here: ``bcpctl`` composes one application that serves :func:`health`,
:func:`readiness` and the :attr:`Service.registry` beside the web pages, and runs the
controller for as long as that application lives.

* health: the process is alive and its loop runs; false once the controller stopped.
* readiness: the control database answers and this process is the leader or a standby
  ready to take over; starting, stopping or no database: not ready.
* metrics: the custom collector, read at scrape time; leader and standbys serve the same
  database values, and ``bcp_scheduler_leader`` says which one schedules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.registry import CollectorRegistry
from sqlalchemy import Engine

from dc import schema
from dc.config import Consortium, load_config
from dc.errors import N_, UsageError
from dc.state import connect
from monitoring.controller import Controller, ServiceSettings
from monitoring.metrics import build_registry, leader_provider
from monitoring.provider import SourceContext
from monitoring.schedule import plan_jobs
from monitoring.tasks import TASKS
from monitoring.upgrade import upgrade_control_db


@dataclass(frozen=True)
class ServeSummary:
    holder: str
    listen: str
    #: whether this process was the active scheduler at some point
    led: bool
    cancelled_jobs: int


@dataclass(frozen=True)
class Service:
    config: Consortium
    engine: Engine
    controller: Controller
    registry: CollectorRegistry


def check_config(config_path: str | Path | None) -> tuple[Consortium, Path]:
    """Everything about the configuration that can be wrong fails here, before anything is stored.

    Returns the configuration and its directory (relative paths in it are resolved there).
    """
    from backup.jobs import config_password
    from failover.settings import drill_settings

    config, resolved = load_config(config_path)
    drill_settings(config, str(resolved))  # drills.failover.second_copy decides replication while failed over
    plan_jobs(config, TASKS)
    if config.systems:
        config_password(config, resolved.parent)  # not at the first backup, hours later
    return config, resolved.parent


def check_settings(config: Consortium, settings: ServiceSettings) -> None:
    """The service options that depend on the configuration (exit 2, before anything is stored)."""
    host = settings.queue_host
    if host is None:
        return
    if not settings.queue:
        raise UsageError(N_("--host needs --queue: only queued backups are routed to a host"))
    if host not in config.hosts:
        known = ", ".join(config.hosts) or "none"
        raise UsageError(N_("--host {host}: not a host of the configuration (known: {known})"), host=host, known=known)


def open_service(config: Consortium, config_dir: Path, settings: ServiceSettings) -> Service:
    """Open the control database, upgrading its schema (logged), and build the controller and its registry.

    A control database that does not exist or has no tables is refused (exit 2), never begun.

    The controller is not running yet. A scheduler of another version holding the lease stops
    the start here (:class:`monitoring.upgrade.OtherVersionRunning`), before anything changed.
    """
    engine = connect(config.control_db)
    try:
        # Never begun here: a serve started at the wrong site would fill a new, empty control
        # state for hours (bcpctl db upgrade begins one).
        schema.require_tables(engine)
        upgrade_control_db(engine)
    except BaseException:
        engine.dispose()
        raise
    controller = Controller(engine, config, config_dir, settings)
    registry = build_registry(SourceContext(engine, config), {"leader": leader_provider(controller.is_leader)})
    return Service(config, engine, controller, registry)


def health(controller: Controller) -> tuple[bool, str]:
    alive = controller.role != "stopped"
    return alive, "ok" if alive else "stopped"


def readiness(controller: Controller) -> tuple[bool, dict[str, Any]]:
    """Touches the control database: call it off the event loop."""
    status = controller.status()
    database = controller.database_reachable()
    ready = database and status.role in ("leader", "standby")
    return ready, {
        "ready": ready,
        "role": status.role,
        "holder": status.holder,
        "leader_since": status.leader_since,
        "jobs": status.jobs,
        "database": "ok" if database else "unreachable",
    }
