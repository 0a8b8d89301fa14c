"""The playbooks, run by real ansible-core through ansible-runner against real sshd hosts.

Each run costs seconds, so each test walks through a whole story (check, apply, re-apply;
fence, promote, fail back) instead of one run per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dc.ansible import run_playbook
from dc.config import load_config
from dc.inventory import build_inventory
from dc.playbook_runs import PlaybookResult, load_run
from dc.state import open_state
from tests.dc.conftest import Fleet, dead_host, single_host_config
from tests.servers.sshd import reap_sshd, rekey_sshd, start_sshd

pytestmark = [pytest.mark.ansible, pytest.mark.sshd, pytest.mark.slow]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _statuses(result: PlaybookResult) -> dict[str, str]:
    return {h.host: h.status for h in result.hosts}


def test_baseline_check_apply_and_reapply(fleet: Fleet, tmp_path: Path) -> None:
    config, path = load_config(fleet.write_config(tmp_path, extra_hosts={"dead": dead_host(tmp_path)}))
    inventory = build_inventory(config, path.parent)
    roots = tmp_path / "roots"
    runs = tmp_path / "runs"

    check = run_playbook("baseline", inventory=inventory, check=True, runs_dir=runs)
    assert _statuses(check) == {"p-lb": "changed", "p-db": "changed", "o-lb": "changed", "dead": "unreachable"}
    assert "Connection refused" in (check.host("dead").message or "")
    # --check created nothing below the per-host roots
    assert sorted(p.name for p in roots.iterdir()) == ["o-lb", "p-db", "p-lb"]
    assert list(roots.glob("*/*")) == []
    assert not check.ok

    applied = run_playbook("baseline", inventory=inventory, limit="all:!dead", runs_dir=runs)
    assert _statuses(applied) == {"p-lb": "changed", "p-db": "changed", "o-lb": "changed"}
    assert applied.ok and applied.host("p-db").changed == 3  # directories, agent config, chrony sources
    agent = (roots / "p-db" / "etc" / "bcpctl" / "agent.yaml").read_text()
    assert "site: primary" in agent and "role: database" in agent and 'tenants: ["goka"]' in agent
    chrony = (roots / "o-lb" / "etc" / "chrony" / "sources.d" / "bcpctl.sources").read_text()
    assert "server ntp1.test-kikan.invalid iburst" in chrony
    spool = roots / "p-lb" / "var" / "lib" / "bcpctl" / "spool"
    assert spool.stat().st_mode & 0o777 == 0o700
    assert spool.owner() == "nobody"
    before = _tree(roots)

    again = run_playbook("baseline", inventory=inventory, limit="all:!dead", runs_dir=runs)
    assert _statuses(again) == {"p-lb": "ok", "p-db": "ok", "o-lb": "ok"}
    assert all(h.changed == 0 for h in again.hosts)
    assert _tree(roots) == before

    stored = load_run(open_state(), check.run_id)
    assert stored is not None and stored.check and _statuses(stored) == _statuses(check)
    assert sorted(p.name for p in runs.iterdir()) == sorted([check.run_id, applied.run_id, again.run_id])


def test_health_returns_facts_per_host_and_fails_a_host_missing_a_service(fleet: Fleet, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = fleet.write_config(tmp_path, vars_by_host={"p-db": {"bcp_health_services": ["sshd", "bcp-no-such-d"]}})
    proc = cli("dc", "run", "health", "--config", str(config), "--json")
    assert proc.returncode == 1
    assert proc.stderr == "bcpctl: error: playbook health: p-db failed\n"
    data = json.loads(proc.stdout)
    hosts = {h["host"]: h for h in data["hosts"]}
    assert {name: h["status"] for name, h in hosts.items()} == {"p-lb": "ok", "p-db": "failed", "o-lb": "ok"}
    assert "services stopped: bcp-no-such-d" in hosts["p-db"]["message"]
    for name, host in hosts.items():
        report = host["data"]
        assert report["disk_path"] == str(tmp_path / "roots" / name)
        assert report["disk_total_bytes"] >= report["disk_free_bytes"] > 0
        assert report["mem_total_kb"] >= report["mem_available_kb"] > 0
        assert "sshd" in report["services_running"]
        assert host["changed"] == 0
    assert hosts["p-db"]["data"]["services_stopped"] == ["bcp-no-such-d"]
    stored = load_run(open_state(), data["run_id"])
    assert stored is not None and stored.host("o-lb").data["services_running"] == ["sshd"]


def test_fence_promote_and_fail_back(fleet: Fleet, tmp_path: Path) -> None:
    config, path = load_config(fleet.write_config(tmp_path))
    inventory = build_inventory(config, path.parent)
    roots = tmp_path / "roots"
    runs = tmp_path / "runs"

    def run(name: str, check: bool = False, **extravars: str) -> PlaybookResult:
        return run_playbook(name, inventory=inventory, check=check, extravars=extravars, runs_dir=runs)

    fenced = run("fence-site", fence_site="primary", fence_reason="earthquake", failover_id="fo-1")
    assert _statuses(fenced) == {"p-lb": "changed", "p-db": "changed"}  # the offsite site is not touched
    marker = json.loads((roots / "p-db" / "var" / "lib" / "bcpctl" / "fenced.json").read_text())
    assert marker == {"fenced": True, "site": "primary", "reason": "earthquake", "failover_id": "fo-1"}
    pg = (roots / "p-db" / "etc" / "postgresql" / "15" / "main" / "conf.d" / "zz-bcp-fence.conf").read_text()
    assert "default_transaction_read_only = on" in pg
    assert "tcp-request connection reject" in (roots / "p-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
    assert not (roots / "o-lb" / "var").exists()

    before = _tree(roots)
    refused = run("promote-site", promote_site="primary")
    assert {h.status for h in refused.hosts if h.host.endswith("lb")} == {"failed"}
    assert "site primary is fenced on p-lb, p-db" in (refused.host("o-lb").message or "")
    assert _tree(roots) == before  # a fenced site is never promoted, not even partly

    promoted = run("promote-site", promote_site="offsite", failover_id="fo-1")
    assert promoted.ok, promoted.hosts
    records = roots / "o-lb" / "etc" / "bind" / "bcp" / "test-kikan.invalid.records"
    assert "kikan\t60\tIN\tA\t127.0.0.13" in records.read_text()  # o-lb's address
    assert records.read_text() == (roots / "p-lb" / "etc/bind/bcp/test-kikan.invalid.records").read_text()
    assert "ACTIVE" in (roots / "o-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
    assert (roots / "p-db" / "var/lib/bcpctl/active-site").read_text() == "offsite\n"
    zone = (roots / "o-lb" / "etc/bind/bcp/db.test-kikan.invalid").read_text()
    before = _tree(roots)

    dry = run("failback", check=True, failback_site="primary")
    assert dry.ok and _statuses(dry) == {"p-lb": "changed", "p-db": "changed", "o-lb": "changed"}
    assert _tree(roots) == before

    back = run("failback", failback_site="primary", failover_id="fo-1")
    assert back.ok, back.hosts
    assert not (roots / "p-db" / "var/lib/bcpctl/fenced.json").exists()
    assert not (roots / "p-db" / "etc/postgresql/15/main/conf.d/zz-bcp-fence.conf").exists()
    haproxy = (roots / "p-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
    assert "default_backend kikan_primary" in haproxy and "server p-db 127.0.0.12:443 check" in haproxy
    assert "tcp-request connection reject" in (roots / "o-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
    assert "kikan\t60\tIN\tA\t127.0.0.11" in records.read_text()
    new_zone = (roots / "o-lb" / "etc/bind/bcp/db.test-kikan.invalid").read_text()
    assert new_zone != zone  # records changed, so the SOA serial did
    assert (roots / "o-lb" / "var/lib/bcpctl/active-site").read_text() == "primary\n"

    # The end of a failback: the offsite's fence is lifted without it serving again.
    assert run("fence-site", fence_site="offsite", failover_id="fb-1").ok
    standby = (roots / "o-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text()
    primary_side = {k: v for k, v in _tree(roots).items() if not k.startswith("o-lb/")}
    lifted = run("unfence-site", unfence_site="offsite", failover_id="fb-1")
    assert _statuses(lifted) == {"o-lb": "changed"}  # the primary's hosts are not touched
    assert not (roots / "o-lb" / "var/lib/bcpctl/fenced.json").exists()
    assert (roots / "o-lb" / "etc/haproxy/conf.d/bcp-services.cfg").read_text() == standby
    assert "tcp-request connection reject" in standby
    assert (roots / "o-lb" / "var/lib/bcpctl/active-site").read_text() == "primary\n"
    assert {k: v for k, v in _tree(roots).items() if not k.startswith("o-lb/")} == primary_side
    again = run("unfence-site", unfence_site="offsite")
    assert _statuses(again) == {"o-lb": "ok"}


def test_a_missing_required_variable_or_empty_limit_is_an_error_not_a_success(fleet: Fleet, tmp_path: Path) -> None:
    config, path = load_config(fleet.write_config(tmp_path))
    inventory = build_inventory(config, path.parent)
    missing = run_playbook("fence-site", inventory=inventory, runs_dir=tmp_path / "runs")
    assert not missing.ok and missing.hosts == []
    assert "fence_site" in (missing.error or "")
    no_site = run_playbook("unfence-site", inventory=inventory, runs_dir=tmp_path / "runs")
    assert not no_site.ok and no_site.hosts == [] and "unfence_site" in (no_site.error or "")
    nobody = run_playbook("health", inventory=inventory, limit="no-such-host", runs_dir=tmp_path / "runs")
    assert not nobody.ok and "no hosts to target" in (nobody.error or "")
    assert list((tmp_path / "roots").glob("*/*")) == []


def test_changed_host_key_is_refused_by_the_playbook_run(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    server = start_sshd(tmp_path / "sshd", address="127.0.0.41")
    try:
        config = single_host_config(
            tmp_path, server, bcp_root=str(tmp_path), ansible_python_interpreter="/usr/bin/python3"
        )
        known = tmp_path / "known_hosts"
        pinned = known.read_text()
        first = cli("dc", "run", "health", "--config", str(config), "--json")
        assert first.returncode == 0, first.stderr
        # A new key right after a good run: with SSH connection sharing (ControlPersist) the
        # second run would ride the first run's connection and never check the key.
        server = rekey_sshd(server)
        second = cli("dc", "run", "health", "--config", str(config), "--json")
        assert second.returncode == 3
        assert second.stderr == "bcpctl: error: host key refused for h1: check the site's known_hosts\n"
        host = json.loads(second.stdout)["hosts"][0]
        assert host["status"] == "unreachable" and "Host key verification failed" in host["message"]
        exec_refused = cli("dc", "exec", "h1", "--config", str(config), "--", "true")
        assert exec_refused.returncode == 3 and "has CHANGED" in exec_refused.stderr
        assert known.read_text() == pinned  # the new key was not learned
    finally:
        reap_sshd(server)
