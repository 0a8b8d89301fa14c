"""Signed partner requests: what verifies, what is refused, and that `ssh-keygen -Y sign` is enough."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.config import parse_config
from dc.state import open_state
from victim_support.partnersig import NAMESPACE, SignatureRefused, message, sign_headers, verify_signed
from victim_support.signing import public_line

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RECIPIENT = "age1" + "q" * 58


def _config(key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "consortium": "t",
            "sites": {"p": {"prefecture": "茨城県", "repository": "/nonexistent"}},
            "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 1}},
            "partners": {
                "koga": {
                    "name": "古河市",
                    "lg_code": "082040",
                    "age_recipient": RECIPIENT,
                    "verify_key": public_line(key.public_key()),
                }
            },
        }
    )


def _verify(engine, config, headers, body=b"{}", target="/api/partner/requests", now=NOW):  # type: ignore[no-untyped-def]
    lowered = {k.lower(): v for k, v in headers.items()}
    return verify_signed(engine, config, method="POST", target=target, headers=lowered, body=body, now=now, window=300)


def test_signed_request_verifies_once(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    engine, config = open_state(f"sqlite:///{tmp_path / 'c.db'}", create=True), _config(key)
    headers = sign_headers(key, "koga", "POST", "/api/partner/requests", b"{}", now=NOW)
    assert _verify(engine, config, headers).partner == "koga"
    with pytest.raises(SignatureRefused, match="replayed"):
        _verify(engine, config, headers)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"body": b'{"x":1}'}, "does not verify"),
        ({"target": "/api/partner/requests?x=1"}, "does not verify"),
        ({"now": datetime(2026, 11, 20, 9, 10, tzinfo=UTC)}, "clock"),
    ],
)
def test_changed_requests_are_refused(tmp_path: Path, change: dict, expected: str) -> None:  # type: ignore[type-arg]
    key = Ed25519PrivateKey.generate()
    engine, config = open_state(f"sqlite:///{tmp_path / 'c.db'}", create=True), _config(key)
    headers = sign_headers(key, "koga", "POST", "/api/partner/requests", b"{}", now=NOW)
    with pytest.raises(SignatureRefused, match=expected):
        _verify(engine, config, headers, **change)


def test_malformed_headers_are_refused_with_the_reason(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    engine, config = open_state(f"sqlite:///{tmp_path / 'c.db'}", create=True), _config(key)
    good = sign_headers(key, "koga", "POST", "/api/partner/requests", b"{}", now=NOW)
    for name, value, reason in (
        ("X-BCP-Nonce", "short", "X-BCP-Nonce"),
        ("X-BCP-Timestamp", "yesterday", "Unix seconds"),
        ("X-BCP-Signature", "not base64!", "base64 body"),
        ("X-BCP-Signature", "", "lacks the header x-bcp-signature"),
    ):
        with pytest.raises(SignatureRefused, match=reason):
            _verify(engine, config, {**good, name: value})


def test_ssh_keygen_signature_is_accepted(tmp_path: Path) -> None:
    """A partner needs only OpenSSH: `ssh-keygen -Y sign` over the documented message."""
    ssh_keygen = shutil.which("ssh-keygen")
    assert ssh_keygen, "ssh-keygen (openssh-client) is needed"
    key_file = tmp_path / "koga"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_ssh_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    body, nonce, stamp = b'{"tenant":"goka"}', "n0nce-n0nce-n0nce-1", int(NOW.timestamp())
    data = tmp_path / "message"
    data.write_bytes(message("POST", "/api/partner/requests", "koga", stamp, nonce, body))
    subprocess.run(
        [ssh_keygen, "-Y", "sign", "-n", NAMESPACE, "-f", str(key_file), str(data)], check=True, capture_output=True
    )
    armored = (tmp_path / "message.sig").read_text()
    compact = "".join(line for line in armored.splitlines() if not line.startswith("-----"))
    engine, config = open_state(f"sqlite:///{tmp_path / 'c.db'}", create=True), _config(key)
    headers = {"X-BCP-Partner": "koga", "X-BCP-Timestamp": str(stamp), "X-BCP-Nonce": nonce, "X-BCP-Signature": compact}
    assert _verify(engine, config, headers, body=body).partner == "koga"
