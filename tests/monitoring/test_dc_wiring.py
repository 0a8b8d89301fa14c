"""dc/ wired into health checks and /metrics: SSH probes with pinned host keys, maintenance mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dc.maintenance import set_maintenance
from monitoring import health
from monitoring.schedule import JobSpec, interval_trigger
from monitoring.tasks import JobContext, health_checks
from tests.monitoring.conftest import Lab, scrape
from tests.servers.ports import free_port
from tests.servers.sshd import cleanup, rekey_sshd, start_sshd

SYSTEMS = {"goka-juki": {"tenant": "goka", "rpo": "15m", "rto": "4h"}}


HEALTH = JobSpec("health", "health", interval_trigger("health", 60), 60)


@pytest.mark.sshd
def test_hosts_with_pinned_keys_are_probed_over_ssh(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "sshd", address="127.0.0.41")
    try:
        lab = lab_factory(
            SYSTEMS,
            hosts={
                "dr-hv01": {
                    "site": "offsite",
                    "role": "hypervisor",
                    "address": server.address,
                    "port": server.port,
                    "user": server.user,
                    "key_file": str(server.client_key),
                },
                "hv01": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": free_port()},
            },
        )
        pinned = lab.root / "known_hosts"  # the operator's copy: a rekeyed server cannot rewrite it
        pinned.write_text(server.known_hosts.read_text())
        lab.raw["sites"]["offsite"]["known_hosts"] = str(pinned)
        lab.write()
        config = lab.config
        up = health.probe_host("dr-hv01", config, lab.root, 5.0)
        assert (up.ok, up.probe) == (True, "ssh"), up.detail
        # No pinned keys at the primary: a TCP connect, labelled as such, is all it gets.
        tcp = health.probe_host("hv01", config, lab.root, 5.0)
        assert (tcp.ok, tcp.probe) == (False, "tcp_connect")
        server = rekey_sshd(server)
        changed = health.probe_host("dr-hv01", config, lab.root, 5.0)
        assert changed.ok is False and "CHANGED" in (changed.detail or "")
        assert pinned.read_text().count("\n") == 1  # RejectPolicy: the new key was not added
        engine = lab.engine()
        health_checks(JobContext(engine, config, lab.root), HEALTH)
        value = scrape(lab, engine).get_sample_value
        assert value("bcp_host_up", {"site": "offsite", "host": "dr-hv01", "probe": "ssh"}) == 0
        assert value("bcp_host_up", {"site": "primary", "host": "hv01", "probe": "tcp_connect"}) == 0
    finally:
        cleanup(server)


def test_a_missing_known_hosts_file_is_a_failed_ssh_probe(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(
        SYSTEMS,
        hosts={"dr-hv01": {"site": "offsite", "role": "hypervisor", "address": "127.0.0.1", "port": free_port()}},
    )
    lab.raw["sites"]["offsite"]["known_hosts"] = str(lab.root / "missing_known_hosts")
    lab.write()
    obs = health.probe_host("dr-hv01", lab.config, lab.root, 2.0)
    assert (obs.ok, obs.probe) == (False, "ssh") and "does not exist" in (obs.detail or "")


def test_maintenance_mode_is_exported(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(
        SYSTEMS,
        hosts={
            "hv01": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": 1},
            "hv02": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": 1},
        },
    )
    engine = lab.engine()
    value = scrape(lab, engine).get_sample_value
    assert value("bcp_host_maintenance", {"site": "primary", "host": "hv01"}) == 0
    set_maintenance(engine, "hv01", True, reason="disk swap", operator="test")
    value = scrape(lab, engine).get_sample_value
    assert value("bcp_host_maintenance", {"site": "primary", "host": "hv01"}) == 1
    assert value("bcp_host_maintenance", {"site": "primary", "host": "hv02"}) == 0
    set_maintenance(engine, "hv01", False, operator="test")
    assert scrape(lab, engine).get_sample_value("bcp_host_maintenance", {"site": "primary", "host": "hv01"}) == 0
