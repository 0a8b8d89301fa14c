"""A point-in-time restore killed while its scratch cluster runs: the next restore or drill cleanup sweeps it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup.locks import process_start, this_machine
from backup.pitrscratch import GRACE, OWNER_FILE, PREFIX, ScratchOwner, owner_gone, pitr_scratch, sweep_scratch
from tests.backup.test_pitr import _archived_past, _write_rows
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import Cli


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text)")
        yield made


def _postmaster(scratch: Path) -> int | None:
    """The pid of the server running in ``scratch``'s data directory, if one runs."""
    try:
        pid = int((scratch / "data" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _killed_restore(cli: Cli, site: WalSite, target: str, tmp: Path) -> Path:
    """Run a restore into ``target`` that SIGKILLs itself once its scratch cluster runs; its scratch."""
    before = set(tmp.iterdir())
    killed = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dsn", target,
        env={"TMPDIR": str(tmp), "BCPCTL_FAILPOINTS": "pitr.scratch-running"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (scratch,) = set(tmp.iterdir()) - before
    assert scratch.name.startswith(PREFIX) and _postmaster(scratch) is not None  # left running
    return scratch


@pytest.mark.postgres
def test_a_killed_restores_scratch_cluster_is_stopped_and_removed_by_drill_cleanup_or_the_next_restore(
    site: WalSite,
) -> None:
    cli = Cli(site.relay.env)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    rows = _write_rows(site, 1)
    _archived_past(site)
    tmp = site.base / "tmp"
    tmp.mkdir(mode=0o755)
    target = site.cluster.create_database("juki_restored")

    first = _killed_restore(cli, site, target, tmp)
    server = _postmaster(first)
    cleanup = cli("drill", "cleanup", "--config", str(site.config), "--json", env={"TMPDIR": str(tmp)})
    assert cleanup.returncode == 0, cleanup.stderr
    swept = json.loads(cleanup.stdout)
    assert [s["cleanup"]["removed"] for s in swept] == [[f"directory {first}"]]
    assert not first.exists() and server is not None and _gone(server)

    second = _killed_restore(cli, site, target, tmp)
    server = _postmaster(second)
    again = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dsn", target, "--json",
        env={"TMPDIR": str(tmp)},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["tables"]["public.juki"] == len(rows)
    assert not list(tmp.iterdir())  # the killed one's scratch and its own are gone
    assert server is not None and _gone(server)


def _gone(pid: int) -> bool:
    """No such process, or only its exit status waits for a parent (a zombie: the server stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_a_scratch_whose_owner_lives_is_left_alone_and_a_dead_owners_is_swept(tmp_path: Path) -> None:
    with pitr_scratch(tmp_path) as mine:
        assert sweep_scratch(tmp_path) == []  # this process owns it
        assert mine.is_dir()
    assert not mine.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{PREFIX}stale"
    (stale / "data").mkdir(parents=True)
    boot = this_machine().boot_id
    (stale / OWNER_FILE).write_text(json.dumps({"pid": int(dead.stdout), "start": 1, "boot": boot}))
    fresh = tmp_path / f"{PREFIX}fresh"  # no owner record yet: being made
    fresh.mkdir()
    planted = tmp_path / f"{PREFIX}link"
    planted.symlink_to(stale)
    other = tmp_path / "bcpctl-pg-other"
    other.mkdir()
    swept = sweep_scratch(tmp_path)
    assert [(s.path, s.removed) for s in swept] == [(str(stale), True)]
    assert fresh.is_dir() and planted.is_symlink() and other.is_dir()
    later = datetime.now(UTC) + timedelta(seconds=GRACE + 1)
    assert [s.path for s in sweep_scratch(tmp_path, now=later)] == [str(fresh)]


def test_owner_gone_is_a_pure_judgement() -> None:
    me = ScratchOwner(os.getpid(), process_start(os.getpid()), "boot-a")
    assert not owner_gone(me, 10**6, "boot-a", lambda pid, start: True)
    assert owner_gone(me, 0, "boot-a", lambda pid, start: False)
    assert owner_gone(me, 0, "boot-b", lambda pid, start: True)  # another boot: no process survived it
    assert not owner_gone(None, GRACE - 1, "boot-a", lambda pid, start: True)
    assert owner_gone(None, GRACE + 1, "boot-a", lambda pid, start: True)
