"""``bcpctl serve`` composed: one FastAPI app on one uvicorn server, the controller in a thread.

The app answers ``/healthz``, ``/readyz`` and ``/metrics`` from :mod:`monitoring.service`,
the runbooks at ``/runbook/ja`` and ``/runbook/en`` (:mod:`bcpctl.runbook`), and with
``--web`` everything else goes to the web surface. Its lifespan runs the
controller: started when the server starts, asked to stop when uvicorn handles SIGTERM or
SIGINT, and waited for — running jobs get ``--stop-timeout``, the rest are recorded as
cancelled — before the process ends.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, make_asgi_app
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bcpctl import runbook
from bcpctl import server as http
from monitoring import logs
from monitoring.controller import Controller, ServiceSettings
from monitoring.service import ServeSummary, Service, check_config, check_settings, health, open_service, readiness

log = logging.getLogger("bcpctl.serve")


class ControllerThread:
    """The controller's loop in a thread, for as long as the app lives."""

    def __init__(self, controller: Controller, on_exit: Callable[[], None] = lambda: None) -> None:
        self.controller = controller
        #: called when the loop ends, asked to or not: a loop that died must end the server too
        self.on_exit = on_exit
        self.cancelled = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="bcp-controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.cancelled = self.controller.run()
        except Exception as exc:  # re-raised in the main thread once the server has stopped
            log.error("the scheduler loop failed (%s): stopping", type(exc).__name__)
            self.error = exc
        finally:
            self.on_exit()

    def stop(self) -> None:
        """Ask the loop to stop and wait for it (it waits for running jobs up to the stop timeout)."""
        self.controller.request_stop()
        if self._thread.ident is not None:
            self._thread.join()


class _Collected(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


class Metrics:
    """``/metrics``: client_python's ASGI app over what the registry yielded, collected in the threadpool.

    Collecting reads the control database, and client_python's app collects on the event loop,
    where a slow database would hold ``/healthz`` and ``/readyz`` for as long as the scrape.

    With ``refresh`` > 0 (``serve --metrics-refresh``) the page is rendered every ``refresh``
    seconds by :meth:`run_refresher` and a scrape is answered from the last rendering: for
    1,452 systems, rendering ~12,000 series in client_python alone takes 0.2–0.9 s on a busy
    2-core controller (docs/scale.md), longer than a scrape should wait. The values are then up
    to ``refresh`` seconds old, like any scrape that lands between two scrape intervals.
    """

    def __init__(self, registry: CollectorRegistry, refresh: float = 0.0) -> None:
        self.registry = registry
        self.refresh = refresh
        self._latest: bytes | None = None

    def render(self) -> bytes:
        body = generate_latest(self.registry)
        self._latest = body
        return body

    def run_refresher(self, stop: threading.Event) -> None:
        while not stop.wait(self.refresh):
            try:
                self.render()
            except Exception as exc:  # the next round tries again; the page keeps its last rendering
                log.warning("metrics not rendered: %s", type(exc).__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.refresh > 0:
            body = self._latest if self._latest is not None else await run_in_threadpool(self.render)
            await Response(body, media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
            return
        scraped = CollectorRegistry()
        scraped.register(_Collected(await run_in_threadpool(lambda: list(self.registry.collect()))))
        await make_asgi_app(scraped)(scope, receive, send)


def build_app(service: Service, runner: ControllerThread, web: ASGIApp | None = None) -> FastAPI:
    metrics = Metrics(service.registry, service.controller.settings.metrics_refresh)
    stop_rendering = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        if metrics.refresh > 0:
            threading.Thread(
                target=metrics.run_refresher, args=(stop_rendering,), name="bcp-metrics", daemon=True
            ).start()
        yield
        stop_rendering.set()
        log.info(
            "stopping: running jobs get %.0f s to finish, then are recorded as cancelled",
            service.controller.settings.stop_timeout,
        )
        await run_in_threadpool(runner.stop)

    # No OpenAPI of its own: with --web, /openapi.json is the web surface's.
    app = FastAPI(title="bcpctl serve", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    controller = service.controller

    # async: it touches no database, so it answers even while every worker thread is busy.
    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> PlainTextResponse:
        alive, text = health(controller)
        return PlainTextResponse(text + "\n", 200 if alive else 503)

    @app.api_route("/readyz", methods=["GET", "HEAD"])
    def readyz() -> Response:
        ready, body = readiness(controller)
        return Response(json.dumps(body) + "\n", 200 if ready else 503, media_type="application/json")

    # The pages every alert's runbook_url opens (bcpctl monitoring rules), with or without --web.
    app.include_router(runbook.router)

    # A Route, not a mount: a mount at /metrics would redirect the scrape to /metrics/.
    app.router.routes.append(Route("/metrics", metrics, methods=["GET", "HEAD"]))
    if web is not None:
        app.mount("/", web)
    return app


def serve(
    config_path: str | Path | None,
    listen: str,
    settings: ServiceSettings,
    *,
    log_format: logs.LogFormat = "text",
    web: bool = False,
) -> ServeSummary:
    """Run until SIGTERM or SIGINT: lead or stand by, and serve HTTP the whole time."""
    host, port = http.parse_listen(listen)
    config, config_dir = check_config(config_path)
    check_settings(config, settings)
    sock = http.bind(host, port)  # before the control database exists: a refused start stores nothing
    with closing(sock):
        bound = http.address(sock)
        logs.configure(log_format)
        service = open_service(config, config_dir, settings)

        def end_server() -> None:
            server.should_exit = True

        runner = ControllerThread(service.controller, on_exit=end_server)
        try:
            server = http.server(build_app(service, runner, _web_app(config_path, service) if web else None))
            paths = "/metrics, /healthz, /readyz" + (" and the web surface" if web else "")
            log.info("serving %s on http://%s as %s", paths, bound, service.controller.holder)
            http.run(server, sock)
        finally:
            runner.stop()  # done by the app's shutdown already, unless the server never got that far
            service.engine.dispose()
    if runner.error is not None:
        raise runner.error
    return ServeSummary(service.controller.holder, bound, service.controller.terms > 0, runner.cancelled)


def _web_app(config_path: str | Path | None, service: Service) -> ASGIApp:
    from bcpctl.web.app import create_app
    from bcpctl.web.context import WebContext

    return create_app(WebContext.load(config_path, state=service.engine))
