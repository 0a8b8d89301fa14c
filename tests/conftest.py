"""Shared fixtures: an isolated environment per test, real servers per session, the CLI.

Servers that cannot start make their tests fail, never skip: a green run must mean the
integration tests really ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.escrow import read_share
from tests.servers.postgres import PostgresServer, start_postgres

#: the Ceph RGW and sshd fixtures (``ceph``, ``sshd_server``, ``storage_url``…) for every package
pytest_plugins = ("tests.servers.storage",)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def control_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A control database at the migrations' head, made once: each test gets a copy of it."""
    from dc.state import open_state

    path = tmp_path_factory.mktemp("control-template") / "control.db"
    open_state(f"sqlite:///{path}", create=True).dispose()  # the last connection closing folds the WAL in
    return path


def isolated_vars(home: Path, control_db_template: Path) -> dict[str, str]:
    """The environment :func:`isolated_env` gives a test, for fixtures that run bcpctl once for
    several tests (module or session scope, before any test's own environment exists)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(control_db_template, home / "control.db")
    env = {k: v for k, v in os.environ.items() if k not in ("BCPCTL_FAILPOINTS", "BCPCTL_REPO", "BCPCTL_CONFIG")}
    env.update(
        BCPCTL_CACHE_DIR=str(home / "cache"),
        BCPCTL_CONTROL_DB=f"sqlite:///{home / 'control.db'}",
        XDG_STATE_HOME=str(home / "state"),
        BCPCTL_PASSWORD=PASSWORD,
    )
    return env


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, control_db_template: Path) -> Path:
    """Cache, control database and state of each test live in its own temporary directory.

    The control database exists, as ``bcpctl db upgrade`` leaves it at installation: only the
    explicit creators begin one (:func:`dc.state.open_state`).
    """
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(control_db_template, home / "control.db")
    monkeypatch.setenv("BCPCTL_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("BCPCTL_CONTROL_DB", f"sqlite:///{home / 'control.db'}")
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("BCPCTL_PASSWORD", PASSWORD)
    monkeypatch.delenv("BCPCTL_FAILPOINTS", raising=False)
    monkeypatch.delenv("BCPCTL_REPO", raising=False)
    monkeypatch.delenv("BCPCTL_CONFIG", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server, stop = start_postgres()
    try:
        yield server
    finally:
        stop()


class Cli:
    """Runs the real ``bcpctl`` entry point in a subprocess: exit codes and stderr as users see them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(self.env)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "bcpctl.cli", *args],
            env=full_env,
            input=input.decode() if input else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def cli(isolated_env: Path) -> Cli:
    return Cli(dict(os.environ))


def quotes_share(text: str, share: Path) -> bool:
    """True when three consecutive words of the share appear in the text.

    Single words are not evidence: a share is drawn from a common word list, so a word such as
    "both" may be in the share and in a fixed error message alike.
    """
    words = read_share(share).split()
    said = " ".join(text.split())
    return any(" ".join(words[i : i + 3]) in said for i in range(len(words) - 2))
