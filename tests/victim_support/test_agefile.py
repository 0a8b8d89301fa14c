"""age interoperability (the real ``age`` CLI) and the stanza cap on untrusted headers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dc.errors import UsageError
from tests.victim_support.conftest import write_identity
from victim_support.agefile import MAX_STANZAS, check_header, decrypt, encrypt, load_identities, read_header
from victim_support.errors import BundleRejected, WrongRecipient


def test_the_age_cli_decrypts_what_we_encrypt(tmp_path: Path) -> None:
    recipient = write_identity(tmp_path / "key.txt")
    plain = "五霞町 𠮷田 花子\n".encode() * 10_000
    (tmp_path / "data.age").write_bytes(encrypt(plain, [recipient]))
    done = subprocess.run(
        ["age", "-d", "-i", tmp_path / "key.txt", tmp_path / "data.age"], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == plain


def test_we_decrypt_what_the_age_cli_encrypts(tmp_path: Path) -> None:
    recipient = write_identity(tmp_path / "key.txt")
    subprocess.run(["age", "-r", recipient, "-o", tmp_path / "x.age"], input=b"hello", check=True)
    assert read_header(tmp_path / "x.age") == 1
    assert decrypt((tmp_path / "x.age").read_bytes(), load_identities(tmp_path / "key.txt")) == b"hello"


def test_wrong_identity(tmp_path: Path) -> None:
    recipient = write_identity(tmp_path / "a.txt")
    write_identity(tmp_path / "b.txt")
    with pytest.raises(WrongRecipient):
        decrypt(encrypt(b"x", [recipient]), load_identities(tmp_path / "b.txt"))


def _header(stanzas: int) -> bytes:
    body = b"".join(b"-> X25519 " + b"A" * 43 + b"\n" + b"B" * 43 + b"\n" for _ in range(stanzas))
    return b"age-encryption.org/v1\n" + body + b"--- " + b"C" * 43 + b"\n"


def test_stanza_cap() -> None:
    assert check_header(_header(3)) == 3
    assert check_header(_header(MAX_STANZAS)) == MAX_STANZAS
    with pytest.raises(BundleRejected, match="more than 16 recipient stanzas"):
        check_header(_header(MAX_STANZAS + 1))


def test_an_absurd_header_is_refused_before_anything_is_decrypted(tmp_path: Path) -> None:
    path = tmp_path / "evil.age"
    path.write_bytes(_header(100_000) + b"\x00" * 64)
    with pytest.raises(BundleRejected, match=r"stanzas|larger than"):
        read_header(path)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"PK\x03\x04", "not an age"),
        (b"age-encryption.org/v1\n-> X25519 abc\n", "truncated"),
        (b"age-encryption.org/v1\n" + b"Z" * 100 + b"\n--- x\n", "malformed"),
    ],
)
def test_malformed_headers(head: bytes, message: str) -> None:
    with pytest.raises(BundleRejected, match=message):
        check_header(head)


def test_identity_files(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(UsageError, match="holds no age identity"):
        load_identities(tmp_path / "empty")
    (tmp_path / "bad").write_text("AGE-SECRET-KEY-1NOPE\n")
    with pytest.raises(UsageError, match="not an age X25519 identity"):
        load_identities(tmp_path / "bad")
    with pytest.raises(UsageError, match="cannot read identity file"):
        load_identities(tmp_path / "missing")
