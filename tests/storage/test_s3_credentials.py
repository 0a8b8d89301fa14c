"""storage/s3.py: credentials come from the environment or a profile, never from a metadata endpoint.

botocore's default chain ends with the EC2 instance metadata service at 169.254.169.254: on
an on-premises gateway that is traffic off the machine (DESIGN: loopback only) and a
pointless wait. Opening S3 without credentials must fail at once, having connected nowhere.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from pathlib import Path

import pytest

from dc.errors import AuthError
from storage.url import open_backend

#: every address a socket of this process connected to while :data:`_WATCHING` was set
_CONNECTED: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING and event == "socket.connect":
        address = args[1]
        _CONNECTED.append(str(address[0]) if isinstance(address, tuple) else str(address))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one records only while a test watches


def test_no_credentials_is_exit_3_without_contacting_the_metadata_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "unset by this test")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")  # the backend's own default must apply
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    started = time.monotonic()
    _WATCHING.append(True)
    try:
        with pytest.raises(AuthError, match="no S3 credentials") as refused:
            open_backend("s3://bucket/repo?endpoint=http://127.0.0.1:9")
    finally:
        _WATCHING.clear()
    assert refused.value.exit_code == 3
    assert not [a for a in _CONNECTED if not a.startswith("/") and not ipaddress.ip_address(a).is_loopback]
    assert time.monotonic() - started < 1.0  # no metadata timeouts waited out
