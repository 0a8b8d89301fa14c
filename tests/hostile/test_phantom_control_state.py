"""Hostile finding 2: after a failover, a bcpctl run without ``$BCPCTL_SITE`` invents a fresh,
empty control state at the lost primary and reports from it.

``local_site`` defaults to the primary and ``require_head`` creates an empty control database
where none exists. At the surviving offsite, once the primary (its control database included)
is gone, an operator who forgets ``BCPCTL_SITE`` gets from ``bcpctl status``: "active site:
primary — as configured (never failed over)", exit 0; ``export list`` shows no requests;
``export request`` files one into that phantom database, where nobody will ever see it. The
file is created at the dead site's path as a side effect of a read. A control database that
should exist and does not is a problem to name (exit 2, "set BCPCTL_SITE" / "bcpctl db
upgrade creates one"), never a new, empty truth.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def test_status_after_failover_never_reports_from_an_invented_control_database(
    cli: Cli, demo_after_failover: Path
) -> None:
    work = demo_after_failover
    lost = work / "primary" / "control.db"
    assert not lost.exists()  # the demo's disaster took the primary, its control state included
    env = {k: v for k, v in cli.env.items() if k not in ("BCPCTL_SITE", "BCPCTL_CONTROL_DB")}
    status = Cli(env)("status", "--config", str(work / "bcpctl.yaml"), "--json")
    assert "internal error" not in status.stderr, status.stderr
    invented = status.returncode == 0 and lost.exists()
    assert not invented, f"status created {lost} and reported from it: {status.stdout[:300]}"
    for command in (("status",), ("export", "list"), ("drill", "list")):
        ran = Cli(env)(*command, "--config", str(work / "bcpctl.yaml"))
        assert ran.returncode == 2 and ran.stderr.count("\n") == 1, (command, ran.stderr)
        assert str(lost) in ran.stderr and "$BCPCTL_SITE" in ran.stderr, (command, ran.stderr)
        assert not lost.exists(), command
