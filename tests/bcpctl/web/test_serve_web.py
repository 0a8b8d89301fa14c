"""``bcpctl serve --web``: one process, one port — the scheduler's metrics and the web pages."""

from __future__ import annotations

import signal
from typing import Any

from tests.monitoring.serving import ServeProcess


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
