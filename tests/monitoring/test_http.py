"""The route table behind /metrics, /healthz and /readyz, served by the stdlib server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from dc.errors import UsageError
from monitoring.http import HttpServer, Request, Response, Routes, parse_listen


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "127.0.0.1", "127.0.0.1:port", ":9464", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="invalid --listen"):
            parse_listen(bad)


def test_routes_dispatch_exact_mounted_and_failing_handlers() -> None:
    routes = Routes()
    routes.add("/healthz", lambda _r: Response(200, b"ok\n"))
    routes.mount("/web", lambda r: Response(200, r.path.encode()))

    def broken(_request: Request) -> Response:
        raise RuntimeError("boom")

    routes.add("/broken", broken)
    get = lambda path, method="GET": routes.dispatch(Request(method, path, {}, {}))  # noqa: E731
    assert get("/healthz").body == b"ok\n"
    assert get("/web/requests/1").body == b"/web/requests/1"
    assert get("/nope").status == 404
    assert get("/healthz", "POST").status == 405
    assert get("/broken").status == 500 and b"boom" not in get("/broken").body
    assert routes.paths() == ["/broken", "/healthz", "/web/"]


def test_server_serves_routes_on_loopback() -> None:
    routes = Routes()
    routes.add("/healthz", lambda r: Response(200, f"{r.query.get('x', ['-'])[0]}\n".encode(), headers={"X-T": "1"}))
    server = HttpServer(routes, "127.0.0.1", 0)
    server.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/healthz?x=42", timeout=5) as response:
            assert (response.status, response.read(), response.headers["X-T"]) == (200, b"42\n", "1")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://{host}:{port}/missing", timeout=5)
        assert missing.value.code == 404
        with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1"):
            HttpServer(routes, "127.0.0.1", port)  # taken
    finally:
        server.stop()
