"""``bcpctl serve``: the controller, its HTTP surface and process lifetime in one place.

:func:`mount_monitoring` puts ``/metrics``, ``/healthz`` and ``/readyz`` on a
:class:`~monitoring.http.Routes` table; other surfaces (the web pages) add their own routes
through the ``mounts`` hooks of :func:`serve`, so one process serves everything while a
single scheduler runs per control database.

* ``/healthz``: the process is alive and its loop runs (200), else 503.
* ``/readyz``: the control database answers and this process is the leader or a standby
  ready to take over (200, JSON with the role); starting, stopping or no database: 503.
* ``/metrics``: the custom collector, read at scrape time; leader and standbys serve the same
  database values, and ``bcp_scheduler_leader`` says which one schedules.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from dc.config import Consortium, load_config
from dc.state import open_state
from monitoring import logs
from monitoring.controller import Controller, ServiceSettings
from monitoring.dialect import lost_create_race
from monitoring.http import HttpServer, Request, Response, Routes, SurfaceFactory, parse_listen
from monitoring.metrics import build_registry, leader_provider
from monitoring.schedule import plan_jobs
from monitoring.sources import SourceContext
from monitoring.tasks import TASKS

log = logging.getLogger("bcpctl.serve")

Mount = Callable[[Routes, Controller, Consortium], None]


@dataclass(frozen=True)
class ServeSummary:
    holder: str
    listen: str
    #: whether this process was the active scheduler at some point
    led: bool
    cancelled_jobs: int


def mount_monitoring(routes: Routes, registry: CollectorRegistry, controller: Controller) -> None:
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(registry), content_type)

    def healthz(_request: Request) -> Response:
        alive = controller.role not in ("stopped",)
        return Response(200 if alive else 503, b"ok\n" if alive else b"stopped\n")

    def readyz(_request: Request) -> Response:
        status = controller.status()
        database = controller.database_reachable()
        ready = database and status.role in ("leader", "standby")
        body = {
            "ready": ready,
            "role": status.role,
            "holder": status.holder,
            "leader_since": status.leader_since,
            "jobs": status.jobs,
            "database": "ok" if database else "unreachable",
        }
        return Response(200 if ready else 503, json.dumps(body).encode() + b"\n", "application/json")

    routes.add("/metrics", metrics)
    routes.add("/healthz", healthz)
    routes.add("/readyz", readyz)


def _open_state(url: str | None) -> Engine:
    """``open_state``, retried: a leader and a standby started together race to create tables."""
    for attempt in range(5):
        try:
            return open_state(url)
        except DBAPIError as exc:
            if attempt == 4 or not lost_create_race(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def serve(
    config_path: str | Path | None,
    listen: str,
    settings: ServiceSettings,
    *,
    log_format: logs.LogFormat = "text",
    mounts: Sequence[Mount] = (),
    surface: SurfaceFactory = HttpServer,
) -> ServeSummary:
    """Run until SIGTERM or SIGINT: lead or stand by, and serve HTTP the whole time.

    ``mounts`` add routes (the web pages); ``surface`` builds what serves them (the stdlib
    server by default; an ASGI server can mount :func:`monitoring.asgi.asgi_app` instead).
    """
    from backup.jobs import config_password
    from replication.url import open_backend

    # Everything that can be wrong with the invocation fails here, before anything is stored.
    host, port = parse_listen(listen)
    config, resolved = load_config(config_path)
    config_dir = resolved.parent
    plan_jobs(config, TASKS)
    if config.systems:
        config_password(config, config_dir)  # not at the first backup, hours later
    logs.configure(log_format)
    engine = _open_state(config.control_db)
    controller = Controller(engine, config, config_dir, settings, open_backend)
    registry = build_registry(SourceContext(engine, config), {"leader": leader_provider(controller.is_leader)})
    routes = Routes()
    mount_monitoring(routes, registry, controller)
    for mount in mounts:
        mount(routes, controller, config)
    server = surface(routes, host, port)
    server.start()
    bound = "{}:{}".format(*server.address)
    log.info("serving %s on http://%s as %s", ", ".join(routes.paths()), bound, controller.holder)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: finishing running jobs, then stopping", signal.Signals(signum).name)
        controller.request_stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        cancelled = controller.run()
    finally:
        server.stop()
        engine.dispose()
    return ServeSummary(controller.holder, bound, controller.terms > 0, cancelled)
