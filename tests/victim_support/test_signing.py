"""SSHSIG signatures: ours verify with OpenSSH's ssh-keygen, and tampering is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.errors import UsageError
from victim_support.errors import SignatureInvalid
from victim_support.settings import ExportSettings
from victim_support.signing import (
    fingerprint,
    load_signing_key,
    load_verify_key,
    parse_private_key,
    public_line,
    sign,
    verify,
)

MESSAGE = b'{"format": "bcpctl-export-bundle/1"}\n'


def test_round_trip_and_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    armored = sign(key, MESSAGE)
    verify(key.public_key(), MESSAGE, armored)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify(key.public_key(), MESSAGE.replace(b"1", b"2"), armored)
    with pytest.raises(SignatureInvalid, match="different key"):
        verify(Ed25519PrivateKey.generate().public_key(), MESSAGE, armored)
    with pytest.raises(SignatureInvalid, match="namespace"):
        verify(key.public_key(), MESSAGE, sign(key, MESSAGE, namespace="file"))
    with pytest.raises(SignatureInvalid, match="malformed"):
        verify(key.public_key(), MESSAGE, armored.replace("A", "*", 1))
    with pytest.raises(SignatureInvalid, match="malformed"):
        verify(key.public_key(), MESSAGE, "")


def test_openssh_verifies_our_signatures_and_signs_ones_we_accept(tmp_path: Path) -> None:
    """A receiving municipality needs only ssh-keygen to check who sent a bundle."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "goka", "-f", tmp_path / "k"], check=True)
    key = parse_private_key((tmp_path / "k").read_bytes(), "k")  # an ssh-keygen key loads
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "msg.sig").write_text(sign(key, MESSAGE))
    (tmp_path / "allowed").write_text(f"goka {public_line(key.public_key())}\n")
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", tmp_path / "allowed", "-I", "goka", "-n", "bcpctl-export",
         "-s", tmp_path / "msg.sig"],
        input=MESSAGE, capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert fingerprint(key.public_key()).encode() in checked.stdout
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", tmp_path / "k", "-n", "bcpctl-export", tmp_path / "msg"],
        check=True, capture_output=True,
    )  # fmt: skip
    verify(load_verify_key(str(tmp_path / "k.pub")), MESSAGE, (tmp_path / "msg.sig").read_text())


def test_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "sign.pem").write_bytes(pem)
    from_file = ExportSettings.model_validate({"tenants": {"goka": {"signing_key_file": "sign.pem"}}})
    assert public_line(load_signing_key(from_file, "goka", tmp_path).public_key()) == public_line(key.public_key())
    monkeypatch.setenv("BCPCTL_EXPORT_SIGNING_KEY_GOKA", pem.decode())
    assert load_signing_key(ExportSettings(), "goka").public_key() == key.public_key()
    monkeypatch.delenv("BCPCTL_EXPORT_SIGNING_KEY_GOKA")
    with pytest.raises(UsageError, match=r"set \$BCPCTL_EXPORT_SIGNING_KEY_GOKA"):
        load_signing_key(ExportSettings(), "goka")
    (tmp_path / "bad").write_text("not a key")
    bad = ExportSettings.model_validate({"tenants": {"goka": {"signing_key_file": str(tmp_path / "bad")}}})
    with pytest.raises(UsageError, match="not an unencrypted Ed25519 private key"):
        load_signing_key(bad, "goka")


@pytest.mark.parametrize("text", ["ssh-rsa AAAA", "ssh-ed25519 !!!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "/no/such"])
def test_malformed_verify_keys(text: str) -> None:
    with pytest.raises(UsageError):
        load_verify_key(text)
