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

Held: ``backup run`` refuses reserved system names, and since the key holder is not bound to
the CLI the test plants the copy through the library too, exactly as ``control ship`` writes one
— but unsigned by the primary controller's key (``failover.copysign``), so promotion skips it.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from backup.opening import open_repository
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.local import LocalBackend
from tests.conftest import PASSWORD, Cli
from tests.failover.conftest import cache_dir
from tests.failover.sites import build_sites, fail_over, lose_the_primary, ok, ship


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
    assert planted.returncode == 2 and "reserved" in planted.stderr, planted.stderr
    tags = {"control_plane": "sqlite-shipping", "control_site": "primary"}
    with cache_dir(tmp_path / "cache"), open_repository(LocalBackend(sites.primary / "repo"), PASSWORD) as repo:
        run_backup(repo, BackupRequest(parse_source(f"sqlite:{evil}"), system="_control", tags=tags))
    ok(cli("replicate", "--config", str(sites.config_path), "--json"))  # the routine nightly job
    lose_the_primary(sites)
    done = fail_over(sites, cli)

    verified = cli("audit", "verify", "--config", str(sites.config_path), "--json", env=sites.offsite_env())
    # Either the failover promotes the genuine shipped copy (its chain holds the two enrolments),
    # or it refuses to promote: never a forged state reported as passed.
    genuine = verified.returncode == 0 and '"entries": 3' in verified.stdout
    assert genuine or done.returncode != 0, verified.stdout
