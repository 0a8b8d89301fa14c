"""`bcpctl serve`'s one app: /healthz, /readyz and /metrics over a real controller and control database.

FastAPI's TestClient checks the HTTP contract across the app's life (before its lifespan
started, leading, after its shutdown); a real uvicorn on 127.0.0.1 shows that a slow scrape
holds neither health nor readiness, and that a controller loop that ends on its own ends the
server. The process as operators run it is tested in tests/monitoring/test_serve.py.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlalchemy import select

from bcpctl import server as http
from bcpctl.serve_app import ControllerThread, build_app
from monitoring.controller import ServiceSettings
from monitoring.lease import RELEASED, scheduler_lease
from monitoring.service import Service, open_service, readiness
from tests.monitoring.conftest import build_lab
from tests.servers.asgi import serving

SETTINGS = ServiceSettings(lease_ttl=3.0, tick=0.1, stop_timeout=5.0)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    lab = build_lab(tmp_path / "lab", {}, control_db=f"sqlite:///{tmp_path / 'control.db'}")
    opened = open_service(lab.config, lab.root, SETTINGS)
    yield opened
    opened.controller.request_stop()
    opened.engine.dispose()


def _leader(value: str) -> float:
    for family in text_string_to_metric_families(value):
        for sample in family.samples:
            if sample.name == "bcp_scheduler_leader":
                return sample.value
    raise AssertionError("bcp_scheduler_leader missing")


def _wait_role(client: TestClient, role: str, timeout: float = 15) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get("/readyz").json()
        if body["role"] == role:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_health_readiness_and_metrics_across_the_apps_life(service: Service) -> None:
    runner = ControllerThread(service.controller)
    app = build_app(service, runner)

    before = TestClient(app)  # no lifespan yet: the controller has not started
    health = before.get("/healthz")
    assert (health.status_code, health.text, health.headers["content-type"]) == (
        200,
        "ok\n",
        "text/plain; charset=utf-8",
    )
    starting = before.get("/readyz")
    assert starting.status_code == 503 and starting.headers["content-type"] == "application/json"
    assert starting.text.endswith("}\n") and starting.json()["role"] == "starting"
    assert before.post("/healthz").status_code == 405
    assert before.get("/nope").status_code == 404
    assert before.get("/openapi.json").status_code == 404  # the web surface's, when mounted

    with TestClient(app) as client:
        ready = _wait_role(client, "leader")
        response = client.get("/readyz")
        assert response.status_code == 200
        assert ready == {
            "ready": True,
            "role": "leader",
            "holder": service.controller.holder,
            "leader_since": ready["leader_since"],
            "jobs": 0,
            "database": "ok",
        }
        head = client.head("/readyz")
        assert head.status_code == 200 and head.content == b""
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert _leader(metrics.text) == 1.0
        assert client.get("/metrics", follow_redirects=False).status_code == 200  # no redirect to /metrics/
        open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
        assert open_metrics.text.endswith("# EOF\n")

    # The app's shutdown stopped the controller: the lease is free for a standby at once.
    after = TestClient(app)
    assert (after.get("/healthz").status_code, after.get("/healthz").text) == (503, "stopped\n")
    stopped = after.get("/readyz")
    assert stopped.status_code == 503 and stopped.json()["role"] == "stopped"
    assert _leader(after.get("/metrics").text) == 0.0
    assert (runner.error, runner.cancelled, service.controller.terms) == (None, 0, 1)
    with service.engine.connect() as conn:
        assert conn.execute(select(scheduler_lease.c.expires_at)).scalar_one() == RELEASED


def test_readiness_says_when_the_control_database_is_gone(tmp_path: Path) -> None:
    lab = build_lab(tmp_path / "lab", {}, control_db=f"sqlite:///{tmp_path / 'db' / 'control.db'}")
    service = open_service(lab.config, lab.root, SETTINGS)
    service.engine.dispose()
    for path in sorted((tmp_path / "db").iterdir()):
        path.unlink()
    (tmp_path / "db").rmdir()
    ready, body = readiness(service.controller)
    assert not ready and body["database"] == "unreachable"
    response = TestClient(build_app(service, ControllerThread(service.controller))).get("/readyz")
    assert response.status_code == 503 and response.json()["database"] == "unreachable"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class _Stuck(Collector):
    """A collector that holds its scrape until released, as a slow control database would."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def describe(self) -> Iterator[Metric]:
        return iter([GaugeMetricFamily("bcp_test_stuck", "held scrape")])

    def collect(self) -> Iterator[Metric]:
        self.entered.set()
        self.release.wait(30)
        yield GaugeMetricFamily("bcp_test_stuck", "held scrape", value=1)


def test_a_slow_scrape_holds_neither_health_nor_readiness(service: Service) -> None:
    stuck = _Stuck()
    service.registry.register(stuck)
    runner = ControllerThread(service.controller)
    with serving(build_app(service, runner)) as base:
        deadline = time.monotonic() + 15
        while _status(f"{base}/readyz") != 200:  # leader or standby once the loop runs
            assert time.monotonic() < deadline
            time.sleep(0.05)
        scraped: list[str] = []
        scrape = threading.Thread(
            target=lambda: scraped.append(urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode())
        )
        scrape.start()
        try:
            assert stuck.entered.wait(10)
            for path in ("/healthz", "/readyz"):
                started = time.monotonic()
                assert _status(f"{base}{path}") == 200
                assert time.monotonic() - started < 2, f"{path} waited for the scrape"
        finally:
            stuck.release.set()
            scrape.join(30)
        assert "bcp_test_stuck 1.0" in scraped[0]


def test_a_controller_loop_that_ends_on_its_own_ends_the_server(service: Service) -> None:
    sock = http.bind("127.0.0.1", 0)

    def end_server() -> None:
        server.should_exit = True

    runner = ControllerThread(service.controller, on_exit=end_server)
    server = http.server(build_app(service, runner))
    service.controller.request_stop()  # the loop returns at once, as if it had failed
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "the server kept running without its controller"
    assert service.controller.role == "stopped"


def test_metrics_refresh_answers_from_the_last_rendering(tmp_path: Path) -> None:
    """--metrics-refresh: a scrape never collects; the page follows the database within the refresh."""
    lab = build_lab(tmp_path / "lab", {}, control_db=f"sqlite:///{tmp_path / 'control.db'}")
    settings = ServiceSettings(lease_ttl=3.0, tick=0.1, stop_timeout=5.0, metrics_refresh=0.3)
    service = open_service(lab.config, lab.root, settings)
    collected: list[float] = []

    class Counting(Collector):
        def collect(self) -> Iterator[Metric]:
            collected.append(time.monotonic())
            family = GaugeMetricFamily("bench_collections", "how often the registry was collected")
            family.add_metric([], float(len(collected)))
            yield family

    service.registry.register(Counting())
    try:
        with TestClient(build_app(service, ControllerThread(service.controller))) as client:
            first = client.get("/metrics")
            assert first.status_code == 200 and "bench_collections" in first.text
            before, started = len(collected), time.monotonic()
            for _ in range(20):
                assert client.get("/metrics").status_code == 200
            rounds = (time.monotonic() - started) / settings.metrics_refresh
            assert len(collected) - before <= rounds + 1  # the refresher's, not the scrapes' 20
            deadline = time.monotonic() + 15
            while "bench_collections 1.0" in client.get("/metrics").text:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        service.controller.request_stop()
        service.engine.dispose()
