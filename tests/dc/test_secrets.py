"""Every reader of a secret, share or private key refuses the wrong thing in one clear line.

The class behind hostile finding 3: whatever is given where a secret is expected (a FIFO, a
device, a directory, a socket, a huge or non-UTF-8 file, a variable from a Latin-1 terminal)
is refused with the reader's exit code, promptly, without reading more than the cap.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.escrow import read_share
from dc.approvers import SECRET_ENV, ApproverAuthFailed, read_secret
from dc.errors import BcpError, UsageError
from dc.secrets import MAX_SECRET_BYTES, PASSWORD_ENV, read_password, read_secret_bytes, read_secret_file
from victim_support.agefile import load_identities

ROOT = Path(__file__).resolve().parents[2]

#: every file reader of a secret, and the exit code its refusals carry
READERS: dict[str, tuple[Callable[[Path], object], type[BcpError]]] = {
    "passphrase": (lambda p: read_password(file=p), UsageError),
    "escrow share": (read_share, UsageError),
    "approver secret": (read_secret, ApproverAuthFailed),
    "age identity": (load_identities, UsageError),
    "signing key": (lambda p: read_secret_bytes(p, "signing key"), UsageError),
}


def _trap(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "endless device":
        path.symlink_to("/dev/zero")
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "oversized":
        path.write_bytes(b"a" * (MAX_SECRET_BYTES + 1))
    elif kind == "not utf-8":
        path.write_bytes("パスワードです".encode("shift_jis"))
    elif kind == "missing":
        pass
    elif kind == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "symlink to fifo":
        os.mkfifo(tmp_path / "fifo")
        path.symlink_to(tmp_path / "fifo")
    return path


TRAPS = (
    "fifo",
    "directory",
    "endless device",
    "socket",
    "oversized",
    "not utf-8",
    "missing",
    "dangling symlink",
    "symlink to fifo",
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("reader", "trap"),
    # a private key file is bytes (PEM or OpenSSH): its parser, not the reader, judges the content
    [(r, t) for r in sorted(READERS) for t in TRAPS if not (r == "signing key" and t == "not utf-8")],
)
def test_every_secret_reader_refuses_every_trap_in_one_line(reader: str, trap: str, tmp_path: Path) -> None:
    read, refusal = READERS[reader]
    path = _trap(trap, tmp_path)
    with pytest.raises(BcpError) as caught:
        read(path)
    assert type(caught.value) is refusal or isinstance(caught.value, refusal), caught.value
    assert "\n" not in caught.value.message


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("a secret passphrase\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_secret_file(tmp_path / "link") == "a secret passphrase"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.binary(max_size=256))
def test_any_file_content_is_a_secret_or_a_clear_refusal(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("s") / "secret"
    path.write_bytes(data)
    try:
        secret = read_secret_file(path)
    except UsageError as exc:
        assert "\n" not in exc.message
    else:
        assert secret and secret.encode() == data.decode("utf-8").rstrip("\r\n").encode()


@pytest.mark.parametrize(
    ("variable", "read", "refusal"),
    [
        (PASSWORD_ENV, lambda: read_password(prompt=None), UsageError),
        (SECRET_ENV, lambda: read_secret(None), ApproverAuthFailed),
    ],
)
def test_a_secret_variable_that_is_not_utf8_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, read: Callable[[], object], refusal: type[BcpError]
) -> None:
    monkeypatch.setenv(variable, os.fsdecode(b"\xe9t\xe9-secret-value"))
    with pytest.raises(refusal):
        read()


def test_no_secret_variable_is_read_around_the_one_reader() -> None:
    """A new ``os.environ.get(SOMETHING_SECRET)`` would skip the checks: secrets come through dc/secrets.py."""
    pattern = re.compile(r"environ(?:\.get\(|\[)\s*(\w*(?:PASSWORD|PASSPHRASE|SECRET)\w*)")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for package in ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "dc" / "secrets.py"
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
