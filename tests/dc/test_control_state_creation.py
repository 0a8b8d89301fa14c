"""Only an explicit creator begins a control database; every other open names the missing one.

An empty control state is believed: after a failover, a run without ``$BCPCTL_SITE`` at the
surviving offsite would otherwise create the lost primary's database and report "never failed
over" from it (tests/hostile/test_phantom_control_state.py is that day end to end).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dc import schema
from dc.state import connect, open_state
from tests.conftest import Cli
from tests.monitoring.conftest import build_lab
from tests.servers.postgres import PostgresServer

OPENERS: dict[str, Callable[[str], Engine]] = {"open_state": open_state, "connect": connect}


@pytest.mark.parametrize("opener", sorted(OPENERS))
def test_a_missing_sqlite_database_is_named_and_never_created(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "lost-site" / "control.db"
    named = re.escape(f"the control database {path} does not exist")
    with pytest.raises(schema.ControlStateMissing, match=named) as raised:
        OPENERS[opener](f"sqlite:///{path}")
    assert raised.value.exit_code == 2 and "\n" not in raised.value.message
    assert not path.parent.exists()


@pytest.mark.parametrize("engine_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_database_without_tables_is_refused_until_db_upgrade(
    request: pytest.FixtureRequest, tmp_path: Path, engine_kind: str
) -> None:
    if engine_kind == "sqlite":
        (tmp_path / "empty.db").touch()
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"empty_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}")
    with pytest.raises(schema.ControlStateMissing, match=r"has no tables .*bcpctl db upgrade creates them"):
        open_state(url)
    engine = connect(url)
    try:
        assert schema.status(engine).state == "empty"  # refusing created nothing
    finally:
        engine.dispose()
    open_state(url, create=True).dispose()
    open_state(url).dispose()


def test_ordinary_commands_name_the_missing_database_and_db_upgrade_creates_it(cli: Cli, tmp_path: Path) -> None:
    lab = build_lab(tmp_path / "lab", {"goka-juki": {"tenant": "goka", "rpo": "15m", "rto": "4h"}})
    for site in ("primary", "offsite"):
        lab.raw["sites"][site]["control_db"] = f"sqlite:///{tmp_path / site / 'control.db'}"
    lab.write()
    config = str(lab.config_path)
    lost = tmp_path / "primary" / "control.db"
    with_config = [
        ("status",),
        ("drill", "list"),
        ("export", "list"),
        ("failover", "plan"),
        ("audit", "verify"),
        ("db", "current"),
        ("serve", "--listen", "127.0.0.1:0"),
    ]
    for command in with_config:
        ran = cli(*command, "--config", config)
        assert ran.returncode == 2, (command, ran.stdout, ran.stderr)
        line = f"bcpctl: error: the control database {lost} does not exist (the primary site's: $BCPCTL_SITE is not"
        assert ran.stderr.startswith(line) and ran.stderr.count("\n") == 1, (command, ran.stderr)
        assert not lost.exists() and not lost.parent.exists(), command
    missing_env = tmp_path / "nowhere" / "control.db"
    ran = cli("drill", "list", env={"BCPCTL_CONTROL_DB": f"sqlite:///{missing_env}"})
    assert ran.returncode == 2 and f"{missing_env} does not exist ($BCPCTL_CONTROL_DB)" in ran.stderr
    assert not missing_env.parent.exists()

    created = cli("db", "upgrade", "--config", config)
    assert created.returncode == 0 and lost.is_file(), created.stderr
    listed = cli("drill", "list", "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    at_offsite = cli("status", "--config", config, env={"BCPCTL_SITE": "offsite"})
    assert at_offsite.returncode == 2 and "(site 'offsite' from $BCPCTL_SITE)" in at_offsite.stderr
    assert not (tmp_path / "offsite" / "control.db").exists()
