"""Failover and failback through the real playbooks: ansible-core against real sshd hosts.

The DC fleet (two primary hosts, one offsite load balancer, each with its own ``bcp_root``)
manages the example consortium's sites, so the fence and promote markers the playbooks
write can be checked after each step. One test walks the whole story: runs cost seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dc.config import load_config
from dc.state import open_state
from failover.context import RunContext
from failover.failback import FailbackRequest, execute_failback
from failover.failover import FailoverRequest, execute_failover
from tests.conftest import Cli
from tests.dc.conftest import Fleet, fleet  # noqa: F401  (the module-scoped fleet fixture)
from tests.failover.conftest import build_consortium
from tests.failover.sites import build_sites, fail_over, ok, ship
from tests.servers.postgres import PostgresServer

pytestmark = [pytest.mark.ansible, pytest.mark.sshd, pytest.mark.postgres, pytest.mark.slow]


def test_failover_and_failback_drive_the_fence_and_promote_playbooks(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
    postgres: PostgresServer,
) -> None:
    managed = yaml.safe_load(fleet.write_config(tmp_path / "fleet").read_text(encoding="utf-8"))
    built = build_consortium(tmp_path / "consortium", postgres, drills={"failover": {"hooks": "ansible"}})
    try:
        raw = yaml.safe_load(built.config_path.read_text(encoding="utf-8"))
        raw["hosts"] = managed["hosts"]
        for site in ("primary", "offsite"):
            raw["sites"][site]["known_hosts"] = managed["sites"][site]["known_hosts"]
        built.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        config, path = load_config(built.config_path)
        ctx = RunContext.create(config, path, open_state(None))
        roots = tmp_path / "fleet" / "roots"

        over = execute_failover(ctx, FailoverRequest("offsite", confirmed=True), handle_signals=False)
        assert over.status == "passed", over.verdict()
        assert [(h["action"], h["site"], h["ok"]) for h in over.hooks] == [
            ("fence", "primary", True),
            ("promote", "offsite", True),
        ]
        assert over.hooks[0]["hosts"] == {"p-lb": "changed", "p-db": "changed"}
        assert (roots / "p-db" / "var/lib/bcpctl/fenced.json").exists()
        assert (roots / "p-db" / "var/lib/bcpctl/active-site").read_text() == "offsite\n"

        back = execute_failback(ctx, FailbackRequest(confirmed=True), handle_signals=False)
        assert back.status == "passed", back.verdict()
        assert [(h["action"], h["site"], h["ok"]) for h in back.hooks] == [
            ("fence", "offsite", True),
            ("failback", "primary", True),
            ("unfence", "offsite", True),
        ]
        assert not (roots / "p-db" / "var/lib/bcpctl/fenced.json").exists()
        assert (roots / "p-db" / "var/lib/bcpctl/active-site").read_text() == "primary\n"
        # The offsite is a standby again: its fence lifted, its load balancer not serving.
        assert not (roots / "o-lb" / "var/lib/bcpctl/fenced.json").exists()
        assert "tcp-request connection reject" in (roots / "o-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
        assert not any("stays fenced" in w for w in back.warnings)
    finally:
        built.drop_databases()


def test_the_cli_refuses_to_promote_while_a_primary_host_answers_and_cannot_be_fenced(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
    cli: Cli,
) -> None:
    """The real fence playbook fails on a primary database host that answers: exit 1, the reason
    named, and the offsite's control state is not promoted (nor anything restored)."""
    managed = yaml.safe_load(fleet.write_config(tmp_path / "fleet").read_text(encoding="utf-8"))
    sites = build_sites(tmp_path / "consortium", cli)
    raw = yaml.safe_load(sites.config_path.read_text(encoding="utf-8"))
    raw["hosts"] = managed["hosts"]
    for site in ("primary", "offsite"):
        raw["sites"][site]["known_hosts"] = managed["sites"][site]["known_hosts"]
    raw["drills"]["failover"]["hooks"] = "ansible"
    sites.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    ok(ship(sites, cli))
    # p-db answers but its fence cannot be written: where the marker's directory goes is a file.
    blocker = tmp_path / "fleet" / "roots" / "p-db" / "var" / "lib" / "bcpctl"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")

    refused = fail_over(sites, cli)
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("bcpctl: error: primary still answers and is not fenced (fence-site: failed")
    assert "p-db" in line and "the control state at offsite was not promoted and nothing was restored" in line
    assert not (sites.offsite / "control.db").exists() and not (sites.offsite / "live").exists()
