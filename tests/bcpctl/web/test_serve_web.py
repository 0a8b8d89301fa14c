"""``bcpctl serve --web``: one process, one port — the scheduler's metrics and the web pages."""

from __future__ import annotations

import signal
from typing import Any

from fastapi.testclient import TestClient

from tests.monitoring.serving import ServeProcess


def test_the_web_surface_answers_every_path_but_the_monitoring_ones(web_ctx: Any) -> None:
    from bcpctl.serve_app import ControllerThread, build_app
    from bcpctl.web.app import create_app
    from monitoring.controller import ServiceSettings
    from monitoring.service import open_service

    service = open_service(web_ctx.config, web_ctx.config_path.parent, ServiceSettings())
    app = build_app(service, ControllerThread(service.controller), create_app(web_ctx))
    client = TestClient(app)
    assert "bcp_scheduler_leader 0.0" in client.get("/metrics").text
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").json()["role"] == "starting"
    assert "/api/partner/requests" in client.get("/openapi.json").json()["paths"]
    login = client.get("/login")
    assert login.status_code == 200 and "運用者ログイン" in login.text
    assert "content-security-policy" in login.headers  # the web app's own headers still wrap its pages
    missing = client.get("/no-such-page")  # the web surface's error page, not the outer app's JSON
    assert missing.status_code == 404 and missing.headers["content-type"] == "text/html; charset=utf-8"
    service.engine.dispose()


def test_serve_mounts_the_web_surface_beside_metrics(web_site: Any, tmp_path: Any) -> None:
    serve = ServeProcess(web_site.config_path, tmp_path / "serve.log", "--web")
    try:
        serve.wait_role("leader")
        assert "bcp_" in serve.metrics()
        status, body = serve.get("/login")
        assert status == 200 and "運用者ログイン" in body.decode()
        status, body = serve.get("/openapi.json")
        assert status == 200 and b"/api/partner/requests" in body
    finally:
        serve.proc.send_signal(signal.SIGTERM)
        serve.proc.wait(60)
