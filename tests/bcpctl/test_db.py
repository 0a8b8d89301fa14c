"""``bcpctl db upgrade`` and ``db current`` as an operator runs them on a deployed site's database.

Every other command that opens the control database refuses an older schema with exit 2 and
names the command that fixes it; the upgrade itself is logged, one line per migration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import update

from dc import schema
from dc.state import connect
from tests.conftest import Cli
from tests.dc.previous_release import create_as_deployed, fill


@pytest.fixture
def deployed(isolated_env: Path) -> str:
    """The control database ($BCPCTL_CONTROL_DB) as the previous release left it, filled."""
    url = os.environ["BCPCTL_CONTROL_DB"]
    (isolated_env / "control.db").unlink()  # the previous release's file instead of this one's
    create_as_deployed(url)
    engine = connect(url)
    try:
        fill(engine)
    finally:
        engine.dispose()
    return url


def test_a_deployed_database_is_refused_until_db_upgrade(cli: Cli, deployed: str) -> None:
    current = cli("db", "current", "--json")
    assert current.returncode == 0, current.stderr
    found = json.loads(current.stdout)
    assert (found["revision"], found["state"], found["head"]) == (None, "unversioned", schema.head())
    assert [m["revision"] for m in found["pending"]] == list(schema.revisions())

    refused = cli("audit", "verify")
    assert refused.returncode == 2
    assert refused.stderr == (
        "bcpctl: error: the control database is at the previous release's schema (no version), "
        f"this bcpctl needs revision {schema.head()}: run bcpctl db upgrade\n"
    )

    upgraded = cli("db", "upgrade", "--json")
    assert upgraded.returncode == 0, upgraded.stderr
    result = json.loads(upgraded.stdout)
    assert (result["before"], result["after"], result["adopted"]) == (None, schema.head(), True)
    for revision in schema.revisions():
        assert f"applied migration {revision} (" in upgraded.stderr  # the log, one line each

    verified = cli("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["requests_checked"] == 2
    again = cli("db", "upgrade")
    assert again.returncode == 0 and f"at revision {schema.head()}, nothing to upgrade" in again.stdout
    assert json.loads(cli("db", "current", "--json").stdout)["state"] == "current"


def test_a_bad_stored_time_stops_db_upgrade_with_exit_1(cli: Cli, deployed: str) -> None:
    engine = connect(deployed)
    try:
        with engine.begin() as conn:
            conn.execute(update(schema.previous_release().tables["web_partner_tokens"]).values(expires_at="soon"))
    finally:
        engine.dispose()
    refused = cli("db", "upgrade")
    assert refused.returncode == 1
    assert "web_partner_tokens.expires_at of row (0a1b2c3d) holds 'soon'" in refused.stderr
    assert json.loads(cli("db", "current", "--json").stdout)["state"] == "unversioned"


def test_db_takes_one_database(cli: Cli, tmp_path: Path) -> None:
    both = cli("db", "current", "--config", str(tmp_path / "bcpctl.yaml"), "--control-db", "sqlite:///x.db")
    assert (both.returncode, both.stderr) == (2, "bcpctl: error: give --config or --control-db, not both\n")
    unsupported = cli("db", "upgrade", "--control-db", "mysql://bcp@127.0.0.1/control")
    assert unsupported.returncode == 2 and "'mysql' is not supported" in unsupported.stderr
    fresh = cli("db", "upgrade", "--json", "--control-db", f"sqlite:///{tmp_path / 'new.db'}")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["before"] is None and json.loads(fresh.stdout)["adopted"] is False
