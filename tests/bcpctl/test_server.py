"""The one uvicorn path of `bcpctl web` and `bcpctl serve`: listen addresses and binding first."""

from __future__ import annotations

import socket

import pytest

from bcpctl import server as http
from dc.errors import UsageError


def test_parse_listen() -> None:
    assert http.parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert http.parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "127.0.0.1", "127.0.0.1:port", ":9464", "127.0.0.1:70000", "127.0.0.1:-1", ""):
        with pytest.raises(UsageError, match="invalid --listen"):
            http.parse_listen(bad)


def test_a_port_in_use_is_one_usage_error() -> None:
    with http.bind("127.0.0.1", 0) as taken:
        host, port = taken.getsockname()[:2]
        assert http.address(taken) == f"127.0.0.1:{port}"
        with pytest.raises(UsageError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: Address already in use$"):
            http.bind(host, port)


def test_ipv6_addresses_are_bracketed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        sock = http.bind("::1", 0)
    except UsageError:
        pytest.skip("::1 is not configured")
    with sock:
        assert http.address(sock) == f"[::1]:{sock.getsockname()[1]}"
