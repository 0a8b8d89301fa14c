"""A fleet of real sshd hosts (the local machine, as root) and configurations that manage them.

Each managed host gets its own ``bcp_root`` directory, so the playbooks write under a test
directory and never to the machine's real /etc or /var. Services and accounts are not
managed in tests (``bcp_manage_services: false``): the test machine has no systemd to
reload and must not gain users.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.ports import free_port
from tests.servers.sshd import SshServer, cleanup, reap_sshd, start_sshd_hosts

#: host name -> (site, rack, role) of the test fleet; one sshd each.
FLEET = {
    "p-lb": ("primary", "A1", "loadbalancer"),
    "p-db": ("primary", "A2", "database"),
    "o-lb": ("offsite", "R1", "loadbalancer"),
}


@dataclass
class Fleet:
    servers: dict[str, SshServer]
    base: Path

    def write_config(
        self,
        directory: Path,
        *,
        extra_hosts: dict[str, dict[str, Any]] | None = None,
        host_vars: dict[str, Any] | None = None,
        vars_by_host: dict[str, dict[str, Any]] | None = None,
    ) -> Path:
        """A configuration managing the fleet, with fresh per-host roots under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        known = {site: directory / f"known_hosts_{site}" for site in ("primary", "offsite")}
        for site, path in known.items():
            path.write_text(
                "".join(self.servers[name].known_hosts_line + "\n" for name, spec in FLEET.items() if spec[0] == site)
            )
        hosts: dict[str, dict[str, Any]] = {}
        for name, (site, rack, role) in FLEET.items():
            server = self.servers[name]
            root = directory / "roots" / name
            root.mkdir(parents=True, exist_ok=True)
            hosts[name] = {
                "site": site,
                "rack": rack,
                "role": role,
                "address": server.address,
                "port": server.port,
                "user": server.user,
                "key_file": str(server.client_key),
                "tenants": ["goka"] if role == "database" else [],
                "vars": {
                    "bcp_root": str(root),
                    "bcp_manage_services": False,
                    "bcp_manage_accounts": False,
                    "bcp_agent_user": "nobody",
                    "bcp_agent_group": "nogroup",
                    "bcp_packages": ["openssh-server"],
                    "bcp_ntp_servers": ["ntp1.test-kikan.invalid"],
                    "ansible_python_interpreter": "/usr/bin/python3",
                    # the load balancers send traffic to the database host in tests
                    "bcp_backend_roles": ["database"],
                    **(host_vars or {}),
                    **(vars_by_host or {}).get(name, {}),
                },
            }
        hosts.update(extra_hosts or {})
        config = {
            "consortium": "test-kikan",
            "sites": {
                "primary": {
                    "prefecture": "茨城県",
                    "role": "primary",
                    "repository": f"file://{directory}/repo",
                    "known_hosts": str(known["primary"]),
                },
                "offsite": {
                    "prefecture": "北海道",
                    "role": "offsite",
                    "repository": f"file://{directory}/offsite",
                    "known_hosts": str(known["offsite"]),
                },
            },
            "tenants": {
                "naka": {"name": "那珂市", "lg_code": "082261", "population": 55986},
                "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376},
            },
            "hosts": hosts,
        }
        path = directory / "bcpctl.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path


def single_host_config(directory: Path, server: SshServer, **host_vars: Any) -> Path:
    """A configuration managing one sshd as host ``h1``, its key pinned in ``directory/known_hosts``."""
    known = directory / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    host = {
        "site": "primary",
        "role": "database",
        "address": server.address,
        "port": server.port,
        "user": server.user,
        "key_file": str(server.client_key),
        "vars": host_vars,
    }
    config = {
        "consortium": "t",
        "sites": {"primary": {"prefecture": "茨城県", "repository": "file:///r", "known_hosts": str(known)}},
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "hosts": {"h1": host},
    }
    path = directory / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def dead_host(directory: Path) -> dict[str, Any]:
    """A configured host where nothing listens: Ansible must report it unreachable."""
    return {
        "site": "primary",
        "rack": "A9",
        "role": "hypervisor",
        "address": "127.0.0.1",
        "port": free_port(),
        "user": "root",
        "vars": {"bcp_root": str(directory / "roots" / "dead")},
    }


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"


@pytest.fixture
def example_config(tmp_path: Path) -> Path:
    """The shipped example, with the test's own control database instead of its control_db."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw.pop("control_db", None)
    path = tmp_path / "ibaraki.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    servers = start_sshd_hosts(base, len(FLEET))
    try:
        yield Fleet(dict(zip(FLEET, servers, strict=True)), base)
    finally:
        for server in servers:
            reap_sshd(server)
            cleanup(server)
