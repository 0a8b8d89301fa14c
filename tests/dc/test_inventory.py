"""The configuration's hosts as an Ansible inventory: groups, host variables, strict SSH options."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from dc.config import load_config, parse_config
from dc.errors import ConfigError
from dc.inventory import build_inventory, managed_host

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"


def _config(**host_overrides: Any) -> dict[str, Any]:
    host = {"site": "primary", "rack": "A-1", "role": "database", "address": "127.0.0.5", "port": 2222}
    host.update(host_overrides)
    return {
        "consortium": "t",
        "sites": {
            "primary": {"prefecture": "茨城県", "repository": "file:///r", "known_hosts": "keys/known_hosts"},
            "dr-site": {"prefecture": "北海道", "role": "offsite", "repository": "file:///o", "known_hosts": "/k"},
        },
        "tenants": {
            "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376},
            "naka": {"name": "那珂市", "lg_code": "082261", "population": 55986},
        },
        "hosts": {
            "db01": host,
            "dr-lb": {"site": "dr-site", "role": "loadbalancer", "address": "127.0.0.6", "user": "ops"},
        },
    }


def test_example_inventory_has_groups_per_site_role_rack_and_tenant() -> None:
    config, path = load_config(EXAMPLE)
    inv = build_inventory(config, path.parent)["all"]
    children = inv["children"]
    assert sorted(children["site_primary"]["hosts"]) == ["db01", "hv01", "hv02", "lb01"]
    assert sorted(children["site_offsite"]["hosts"]) == ["dr-hv01", "dr-lb01"]
    assert sorted(children["role_hypervisor"]["hosts"]) == ["dr-hv01", "hv01", "hv02"]
    assert sorted(children["rack_primary_A2"]["hosts"]) == ["db01", "lb01"]
    assert list(children["tenant_goka"]["hosts"]) == ["db01"]
    assert inv["vars"]["bcp_primary_site"] == "primary"
    db01 = inv["hosts"]["db01"]
    assert (db01["ansible_host"], db01["ansible_port"], db01["ansible_user"]) == ("127.0.1.21", 2203, "bcp")
    assert db01["bcp_tenants"] == ["hitachiomiya", "naka", "kasumigaura", "goka"]
    assert "ansible_ssh_private_key_file" not in db01  # no key file configured: the agent is used


def test_host_vars_carry_strict_ssh_options_and_resolved_paths(tmp_path: Path) -> None:
    config = parse_config(_config(key_file="keys/id_ed25519", vars={"bcp_root": "/srv/t"}))
    inv = build_inventory(config, tmp_path)["all"]
    db01 = inv["hosts"]["db01"]
    assert db01["ansible_ssh_private_key_file"] == str(tmp_path / "keys" / "id_ed25519")
    assert db01["bcp_root"] == "/srv/t"
    assert db01["bcp_rack"] == "A-1"
    args = shlex.split(db01["ansible_ssh_common_args"])
    options = dict(args[i + 1].split("=", 1) for i in range(0, len(args), 2))
    assert options["StrictHostKeyChecking"] == "yes"
    assert options["UserKnownHostsFile"] == str(tmp_path / "keys" / "known_hosts")
    assert options["ControlMaster"] == "no" and options["ControlPersist"] == "no"
    assert options["BatchMode"] == "yes"
    assert "ControlMaster=no" in db01["ansible_ssh_args"]
    assert "rack_primary_A_1" in inv["children"]  # group names only allow [A-Za-z0-9_]
    assert "site_dr_site" in inv["children"]
    assert inv["hosts"]["dr-lb"]["ansible_user"] == "ops"


def test_excluded_hosts_are_not_in_any_group() -> None:
    inv = build_inventory(parse_config(_config()), exclude=["db01"])["all"]
    assert list(inv["hosts"]) == ["dr-lb"]
    assert all("db01" not in group["hosts"] for group in inv["children"].values())


def test_a_site_without_known_hosts_is_refused() -> None:
    raw = _config()
    del raw["sites"]["primary"]["known_hosts"]
    with pytest.raises(ConfigError, match=r"sites\.primary\.known_hosts: not set.*db01"):
        build_inventory(parse_config(raw))


@pytest.mark.parametrize("key", ["ansible_ssh_common_args", "ansible_host", "ansible_ssh_extra_args"])
def test_connection_vars_cannot_be_overridden(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"hosts\.db01\.vars\.{key}: connection settings"):
        build_inventory(parse_config(_config(vars={key: "-o StrictHostKeyChecking=no"})))


def test_unknown_host_is_a_usage_error() -> None:
    with pytest.raises(Exception, match="unknown host 'nope' \\(known: db01, dr-lb\\)"):
        managed_host(parse_config(_config()), "nope")


def test_cli_inventory_json_is_an_ansible_inventory(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("dc", "inventory", "--config", str(EXAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    inv = json.loads(proc.stdout)
    assert set(inv["all"]["hosts"]) == {"hv01", "hv02", "db01", "lb01", "dr-hv01", "dr-lb01"}
    assert "role_loadbalancer" in inv["all"]["children"]


def test_cli_inventory_bad_config_is_one_line_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = _config()
    del raw["sites"]["primary"]["known_hosts"]
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(raw))
    proc = cli("dc", "inventory", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "known_hosts: not set" in proc.stderr
    assert proc.stdout == ""
