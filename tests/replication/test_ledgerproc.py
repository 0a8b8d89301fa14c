"""The replication ledger served from a forked helper (replication/ledgerproc.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dc.errors import BcpError
from dc.state import open_state
from replication.ledger import Ledger
from replication.ledgerproc import LedgerProcess
from replication.records import Pin, SystemLag

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_calls_reach_the_database_and_answers_come_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    pin = Pin("repo-1", "ab" * 32, 7, "cd" * 32)
    lag = SystemLag("juki", NOW, NOW, 0.0)
    with LedgerProcess(url) as ledger:
        assert ledger.pin("repo-1") is None
        ledger.set_pin(pin, NOW)
        assert ledger.pin("repo-1") == pin
        ledger.record_lag("src", "tgt", [lag], NOW)
        helper = ledger.pid  # type: ignore[attr-defined]
        assert helper != os.getpid() and _alive(helper)
    assert not _alive(helper)  # closing the pipe ends the helper, and it was reaped
    in_process = Ledger(open_state(url))
    assert in_process.pin("repo-1") == pin
    assert [(row.system, row.lag_seconds) for row in in_process.lag("tgt")] == [("juki", 0.0)]


def test_an_unreachable_database_is_one_line_at_the_first_call() -> None:
    # port 1 on loopback: nothing listens, the refusal is immediate
    with LedgerProcess("postgresql://bcp@127.0.0.1:1/control") as ledger:
        with pytest.raises(BcpError, match=r"^the control database cannot be reached: ") as raised:
            ledger.pin("repo-1")
        assert "\n" not in str(raised.value)
        with pytest.raises(BcpError, match="cannot be reached"):  # and at every later one
            ledger.record_run(ok=False)


def test_a_helper_that_died_is_an_error_not_a_hang(tmp_path: Path) -> None:
    with LedgerProcess(f"sqlite:///{tmp_path / 'control.db'}") as ledger:
        assert ledger.pin("repo-1") is None
        os.kill(ledger.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        with pytest.raises(BcpError, match="helper process exited unexpectedly"):
            ledger.pin("repo-1")


def test_no_private_method_is_forwarded(tmp_path: Path) -> None:
    with LedgerProcess(f"sqlite:///{tmp_path / 'control.db'}") as ledger:
        with pytest.raises(AttributeError):
            ledger._engine  # type: ignore[attr-defined]  # noqa: B018
        with pytest.raises(RuntimeError, match="no method 'engine'"):
            ledger.engine()  # type: ignore[operator]


def test_the_helper_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from replication.ledgerproc import LedgerProcess\n"
        f"with LedgerProcess('sqlite:///{tmp_path / 'control.db'}') as ledger:\n"
        "    ledger.pin('x')\n"
        "    print(ledger.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        helper = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert _alive(helper)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(helper) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(helper)
    finally:
        parent.kill()
        parent.wait()


def test_a_cli_replication_keeps_sqlalchemy_out_of_the_main_process() -> None:
    """The point of the helper: the modules a replication run imports do not pull SQLAlchemy in."""
    script = (
        "import sys\n"
        "import bcpctl.commands.replicate, replication.jobs, replication.sync, storage.s3, storage.sftp\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
