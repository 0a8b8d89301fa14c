"""Listing what a failover lost, as an operation: its scratch clusters hold residents' data and
running PostgreSQL servers, so a killed listing must leave nothing ``drill cleanup`` cannot
remove; and a failover may leave the listing for later, its report then naming the command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest

from failover.report_html import render_html
from failover.report_ja import render_ja
from failover.results import SystemResult, to_document
from failover.worklist import failover_losses
from tests.backup.walsite import SYSTEM
from tests.conftest import Cli
from tests.failover.documents import document
from tests.failover.lostsite import Disaster, failover_run, with_survivors

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch_tmp() -> Iterator[Path]:
    """A temporary directory of its own for the listing (``$TMPDIR``), reachable by PostgreSQL's account."""
    path = Path(tempfile.mkdtemp(prefix="bcpctl-losttmp-"))
    path.chmod(0o1777)
    yield path
    for pidfile in path.glob("*/*/postmaster.pid"):  # only if the test failed: never leave a server behind
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie no one reaped is no server
    except FileNotFoundError:
        return True


def test_a_killed_listing_leaves_no_server_and_no_copy_after_drill_cleanup(
    disaster: Disaster, scratch_tmp: Path
) -> None:
    env = disaster.site.relay.env | {"TMPDIR": str(scratch_tmp)}
    argv = [sys.executable, "-m", "bcpctl.cli", "failover", "lost", SYSTEM, "--config", str(disaster.site.config)]
    listing = subprocess.Popen(
        [*argv, "--surviving-wal", str(disaster.survivors / "pg_wal")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # killed while the second cluster replays: the first, promoted and idle, would outlive the
    # removal of its directory (PostgreSQL rechecks its lock file once a minute)
    while not list(scratch_tmp.glob("bcpdrill-lost-*/survivors/postmaster.pid")):
        assert listing.poll() is None and time.monotonic() < deadline, "no second scratch cluster ever started"
        time.sleep(0.05)
    time.sleep(0.3)  # let the postmaster write its pid
    pidfiles = list(scratch_tmp.glob("bcpdrill-lost-*/*/postmaster.pid"))
    postmasters = [int(p.read_text().splitlines()[0]) for p in pidfiles]
    scratch = pidfiles[0].parent.parent
    listing.send_signal(signal.SIGKILL)
    listing.wait()
    assert len(postmasters) == 2 and not any(_gone(pid) for pid in postmasters) and scratch.exists()

    swept = Cli(env)("drill", "cleanup", "--config", str(disaster.site.config))
    assert swept.returncode == 0, swept.stderr
    assert "killed" in swept.stdout and scratch.name in swept.stdout
    assert not scratch.exists() and list(scratch_tmp.iterdir()) == []
    time.sleep(2)  # a server stopped by the cleanup has exited; one whose files were only deleted runs on
    assert [pid for pid in postmasters if not _gone(pid)] == []
    again = Cli(env)("drill", "cleanup", "--config", str(disaster.site.config))
    assert again.returncode == 0 and "0 run(s) swept" in again.stdout


def test_a_finished_listing_leaves_nothing_and_its_run_is_recorded(disaster: Disaster, scratch_tmp: Path) -> None:
    env = disaster.site.relay.env | {"TMPDIR": str(scratch_tmp)}
    done = Cli(env)(
        "failover", "lost", SYSTEM, "--config", str(disaster.site.config),
        "--surviving-wal", str(disaster.survivors / "pg_wal"), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(scratch_tmp.iterdir()) == []
    swept = Cli(env)("drill", "cleanup", "--config", str(disaster.site.config))
    assert swept.returncode == 0 and "0 run(s) swept" in swept.stdout, swept.stdout


def test_a_deferred_listing_restores_nothing_and_names_the_command(disaster: Disaster, tmp_path: Path) -> None:
    declared = datetime(2026, 12, 6, 3, 14, 15, tzinfo=UTC)
    passed = SystemResult(SYSTEM, "goka", "住民基本台帳", 1, 1, 60, 3600, status="passed", source_kind="postgres-wal")
    passed.snapshot_time = declared - timedelta(seconds=30)
    config, path = with_survivors(disaster, tmp_path / "c", [str(disaster.survivors / "pg_wal")])
    started = time.monotonic()
    losses, warnings = failover_losses(
        config, path, [passed], declared, "offsite", *failover_run(config, declared), defer=True
    )
    assert time.monotonic() - started < 5  # no base restore
    assert warnings == [] and losses[SYSTEM]["rows"] == [] and losses[SYSTEM]["survived_lsn"] is None
    command = losses[SYSTEM]["deferred"]
    assert command.startswith(f"bcpctl failover lost {SYSTEM} --site offsite --declared-at {declared.isoformat()}")
    doc = document(declared) | {"mode": "execute", "systems": [to_document(passed)], "lost": losses}
    report = render_ja(doc, "goka", "五霞町")
    assert "後回し" in report and command in report and "すべて失われました" not in report
    assert passed.snapshot_time.isoformat() in report and declared.isoformat() in report
    assert "後回し deferred" in render_html(doc, {}) and escape(command) in render_html(doc, {})
    # the command it names parses: the same options 'failover lost' takes
    named = Cli(disaster.site.relay.env)(*command.split()[1:-2], "--help")
    assert named.returncode == 0, named.stderr


def test_failover_execute_takes_lost_work_now_or_later_only() -> None:
    cli = Cli(dict(os.environ))
    bad = cli("failover", "execute", "--to", "offsite", "--lost-work", "sometimes")
    assert bad.returncode == 2 and "--lost-work" in bad.stderr
    assert "--lost-work [now|later]" in cli("failover", "execute", "--help").stdout
