"""Hostile finding 13: a control-state copy planted with the repository key alone is promoted at failover.

The control state (approvers, export requests, the audit chain) is shipped as a snapshot of the
reserved system ``_control`` tagged ``control_site``. Whoever holds the repository key — every
backup operator, who must never be able to write the control database — can run ``bcpctl
backup run --source sqlite:EVIL --system _control --tag control_plane=sqlite --tag
control_site=primary``: nothing reserves the system or binds a copy to ``control ship``. The next
routine ``replicate`` carries it offsite, and a failover promotes it as "the newest verified
copy" with status passed: the genuine approvers and audit chain are replaced by the attacker's
database (here: an emptied audit log and every export request set to approved). Only a later
``audit verify`` at the offsite notices a broken chain — after the forged state is live.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.failover.sites import build_sites, fail_over, lose_the_primary, ok, ship


@pytest.mark.xfail(
    strict=True,
    reason="hostile finding 13: a _control snapshot planted with `backup run` is promoted at failover",
)
def test_a_control_copy_planted_with_backup_run_is_never_promoted(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    ok(ship(sites, cli))
    evil = tmp_path / "evil.db"
    shutil.copy(sites.primary / "control.db", evil)
    with sqlite3.connect(evil) as conn:
        conn.execute("DELETE FROM audit_log")
        conn.execute("UPDATE export_requests SET status = 'approved'")
    planted = cli(
        "backup", "run", "--repo", str(sites.primary / "repo"), "--source", f"sqlite:{evil}",
        "--system", "_control", "--tag", "control_plane=sqlite", "--tag", "control_site=primary", "--json",
    )  # fmt: skip
    refused_at_once = planted.returncode != 0
    ok(cli("replicate", "--config", str(sites.config_path), "--json"))  # the routine nightly job
    lose_the_primary(sites)
    done = fail_over(sites, cli)

    verified = cli("audit", "verify", "--config", str(sites.config_path), "--json", env=sites.offsite_env())
    # Either the plant is refused, or the failover promotes the genuine shipped copy (its chain
    # holds the two enrolments), or it refuses to promote: never a forged state reported as passed.
    genuine = verified.returncode == 0 and '"entries": 3' in verified.stdout
    assert refused_at_once or genuine or done.returncode != 0, verified.stdout
