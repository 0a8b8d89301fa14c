"""Hostile findings: where secrets are read from (passphrase file or variable, escrow share
files, approver secret files), an anticipated OS condition must be one clear line with a
documented exit code — never an internal error, a hang or all of the machine's memory.

A careless operator points ``--password-file`` at the wrong thing (a FIFO, a device, a file
saved in Shift_JIS); a hostile one does it on purpose to a shared controller.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli


def _init(cli: Cli, tmp_path: Path) -> str:
    repo = str(tmp_path / "repo")
    done = cli("repo", "init", "--repo", repo)
    assert done.returncode == 0, done.stderr
    return repo


def _one_clear_line(done: subprocess.CompletedProcess[str], code: int) -> None:
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith("bcpctl: error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_passphrase_file_that_is_not_utf8_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    repo = _init(cli, tmp_path)
    bad = tmp_path / "pw"
    bad.write_bytes("パスワード".encode("shift_jis"))
    _one_clear_line(cli("snapshots", "--repo", repo, "--password-file", str(bad)), 2)


def test_a_passphrase_variable_that_is_not_utf8_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    repo = _init(cli, tmp_path)
    # a Latin-1 terminal's passphrase reaches Python surrogate-escaped
    done = cli("snapshots", "--repo", repo, env={"BCPCTL_PASSWORD": os.fsdecode(b"\xe9t\xe9-password")})
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode in (2, 3), done.stderr


def test_an_escrow_file_that_is_not_utf8_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    repo = _init(cli, tmp_path)
    bad = tmp_path / "share.txt"
    bad.write_bytes(b"\xff\xfe" + "share".encode("utf-16-le"))
    done = cli("snapshots", "--repo", repo, "--escrow", str(bad), "--escrow", str(bad), env={"BCPCTL_PASSWORD": ""})
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode in (2, 3), done.stderr


def test_a_passphrase_file_that_is_a_fifo_never_hangs(cli: Cli, tmp_path: Path) -> None:
    repo = _init(cli, tmp_path)
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    try:
        done = cli("snapshots", "--repo", repo, "--password-file", str(fifo), timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("bcpctl waited forever on a FIFO given as --password-file")
    _one_clear_line(done, 2)


def test_an_escrow_file_that_is_a_fifo_never_hangs(cli: Cli, tmp_path: Path) -> None:
    repo = _init(cli, tmp_path)
    fifo = tmp_path / "share.fifo"
    os.mkfifo(fifo)
    try:
        done = cli("snapshots", "--repo", repo, "--escrow", str(fifo), timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("bcpctl waited forever on a FIFO given as --escrow")
    assert done.returncode in (2, 3) and "internal error" not in done.stderr, done.stderr


def _limited() -> None:
    # 1.5 GiB of address space: reading /dev/zero to the end must not be how bcpctl fails
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024, 1536 * 1024 * 1024))


def test_a_passphrase_file_that_never_ends_is_refused_without_eating_memory(tmp_path: Path, cli: Cli) -> None:
    repo = _init(cli, tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bcpctl.cli", "snapshots", "--repo", repo, "--password-file", "/dev/zero"],
            env=cli.env,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("bcpctl read /dev/zero for a minute")
    _one_clear_line(done, 2)


EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml")


def test_an_approver_secret_file_that_is_a_fifo_never_hangs(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    check = ("approver", "check", "--config", EXAMPLE, "--approver", "somu-kacho", "--approver-secret-file", str(fifo))
    try:
        done = cli(*check, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("bcpctl approver check waited forever on a FIFO given as the approver's secret")
    _one_clear_line(done, 3)


def test_an_approver_secret_file_that_is_not_utf8_exits_3(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "secret"
    bad.write_bytes("承認者の秘密です".encode("shift_jis"))
    check = ("approver", "check", "--config", EXAMPLE, "--approver", "somu-kacho", "--approver-secret-file", str(bad))
    _one_clear_line(cli(*check), 3)
