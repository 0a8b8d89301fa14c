"""Hostile finding 3: one edited row of the control database's run records makes ``bcpctl status``,
``drill list`` and ``failover plan`` an "internal error".

The failover's ``drill_runs`` row decides which site is active. A ``declared_at`` or
``finished_at`` that is not a timestamp (an edit, a restore of a damaged copy) raises
``ValueError: Invalid isoformat string``; a ``finished_at`` of year 9999 raises
``OverflowError`` in ``status``. Malformed ``export_requests`` rows are already named ("its row
in the control database is malformed"); run records must be too — exit 1 or 2 with one line
naming the run — and during a disaster ``status`` is the command that must still answer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE drill_runs SET finished_at = 'garbage' WHERE kind = 'failover'",
        "UPDATE drill_runs SET declared_at = 'garbage' WHERE kind = 'failover'",
        "UPDATE drill_runs SET finished_at = '9999-12-31 23:59:59' WHERE kind = 'failover'",
    ],
)
def test_an_edited_run_record_is_named_never_an_internal_error(cli: Cli, demo_after_failover: Path, edit: str) -> None:
    work = demo_after_failover
    with sqlite3.connect(work / "offsite" / "control.db") as conn:
        (failover_id,) = conn.execute("SELECT id FROM drill_runs WHERE kind = 'failover'").fetchone()
        assert conn.execute(edit).rowcount == 1
    config = str(work / "bcpctl.yaml")
    at_offsite = {"BCPCTL_SITE": "offsite"}
    for command in (("status",), ("control", "status"), ("drill", "list"), ("failover", "plan")):
        ran = cli(*command, "--config", config, env=at_offsite)
        assert "internal error" not in ran.stderr, f"{' '.join(command)}: {ran.stderr}"
        column = edit.split()[3]
        assert ran.returncode == 1 and ran.stderr.count("\n") == 1, (command, ran.stderr)
        assert f"drill_runs row {failover_id}: {column} holds" in ran.stderr, (command, ran.stderr)
