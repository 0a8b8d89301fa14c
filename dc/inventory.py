"""The configuration's hosts as managed machines and as an Ansible inventory.

One place decides how a host is reached (address, port, user, key file, pinned known_hosts),
so the Ansible runs and the direct SSH commands can never disagree about it. Host-key
checking is strict in both: the ssh options below are written into every host's variables,
so even an operator who feeds ``bcpctl dc inventory --json`` to ``ansible-playbook -i`` by
hand gets the pinned known_hosts, and Ansible's ControlMaster (which let a later run pass
with a wrong known_hosts, see notes/real-servers.md) is off.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dc.config import Consortium
from dc.errors import N_, ConfigError, Message, UsageError

#: ``ansible_*`` host variables a configuration may set; the connection ones are ours alone.
ALLOWED_ANSIBLE_VARS = frozenset({"ansible_python_interpreter"})

#: ssh's defaults include ControlMaster=auto/ControlPersist=60s; the first -o value wins, so the
#: defaults themselves must be replaced, not just followed by ours.
SSH_ARGS = "-o ControlMaster=no -o ControlPersist=no"

CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class ManagedHost:
    """A host of the configuration with every path resolved: what SSH and Ansible need."""

    name: str
    site: str
    site_role: str
    role: str
    rack: str | None
    address: str
    port: int
    user: str
    key_file: str | None
    known_hosts: str
    tenants: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)


def _resolve(path: str, config_dir: Path | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and config_dir is not None:
        p = config_dir / p
    return str(p)


def managed_hosts(config: Consortium, config_dir: Path | None = None) -> dict[str, ManagedHost]:
    """Every configured host, in configuration order; refuses hosts without a pinned known_hosts."""
    hosts = {}
    for name, host in config.hosts.items():
        site = config.sites[host.site]
        if not site.known_hosts:
            # Strict host-key checking needs keys pinned beforehand; trust-on-first-use is refused.
            raise ConfigError(
                N_(
                    "sites.{site}.known_hosts: not set, but host '{name}' needs it (strict host-key checking "
                    "requires a pinned known_hosts file)"
                ),
                site=host.site,
                name=name,
            )
        for key in host.vars:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ConfigError(N_("hosts.{name}.vars.{key}: not a valid Ansible variable name"), name=name, key=key)
            if key.startswith("ansible_") and key not in ALLOWED_ANSIBLE_VARS:
                raise ConfigError(
                    N_(
                        "hosts.{name}.vars.{key}: connection settings come from the host's fields, not from vars "
                        "(they would bypass strict host-key checking)"
                    ),
                    name=name,
                    key=key,
                )
        hosts[name] = ManagedHost(
            name=name,
            site=host.site,
            site_role=site.role,
            role=host.role,
            rack=host.rack,
            address=host.address,
            port=host.port,
            user=host.user,
            key_file=_resolve(host.key_file, config_dir) if host.key_file else None,
            known_hosts=_resolve(site.known_hosts, config_dir),
            tenants=host.tenants,
            vars=dict(host.vars),
        )
    return hosts


def managed_host(config: Consortium, name: str, config_dir: Path | None = None) -> ManagedHost:
    hosts = managed_hosts(config, config_dir)
    if name not in hosts:
        raise UsageError(
            N_("unknown host '{name}' (known: {hosts})"), name=name, hosts=", ".join(hosts) or Message(N_("none"))
        )
    return hosts[name]


def group_name(kind: str, *parts: str) -> str:
    """``site_primary``, ``rack_primary_A1``: Ansible group names allow only [A-Za-z0-9_]."""
    return "_".join([kind, *(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts)])


def ssh_common_args(host: ManagedHost) -> str:
    """The ssh options every Ansible connection uses: pinned keys, no prompts, no multiplexing."""
    return " ".join(
        [
            "-o StrictHostKeyChecking=yes",
            f"-o UserKnownHostsFile={shlex.quote(host.known_hosts)}",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o UpdateHostKeys=no",
            # keys only: no Kerberos lookups (Debian's ssh_config turns GSSAPI on)
            "-o GSSAPIAuthentication=no",
            "-o BatchMode=yes",
            f"-o ConnectTimeout={CONNECT_TIMEOUT}",
            SSH_ARGS,
        ]
    )


def host_vars(host: ManagedHost) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": host.user,
        "ansible_ssh_args": SSH_ARGS,
        "ansible_ssh_common_args": ssh_common_args(host),
        "bcp_site": host.site,
        "bcp_site_role": host.site_role,
        "bcp_role": host.role,
        "bcp_rack": host.rack,
        "bcp_tenants": list(host.tenants),
    }
    if host.key_file:
        variables["ansible_ssh_private_key_file"] = host.key_file
    variables.update(host.vars)
    return variables


def build_inventory(
    config: Consortium, config_dir: Path | None = None, *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """The inventory in Ansible's YAML/JSON structure: groups per site, role, rack and tenant.

    ``exclude`` leaves hosts out entirely (e.g. those in maintenance), so no pattern can reach them.
    """
    hosts = {name: h for name, h in managed_hosts(config, config_dir).items() if name not in exclude}
    children: dict[str, dict[str, Any]] = {}

    def add(group: str, host: str) -> None:
        children.setdefault(group, {"hosts": {}})["hosts"][host] = {}

    for name, host in hosts.items():
        add(group_name("site", host.site), name)
        add(group_name("role", host.role), name)
        if host.rack:
            add(group_name("rack", host.site, host.rack), name)
        for tenant in host.tenants:
            add(group_name("tenant", tenant), name)
    return {
        "all": {
            "hosts": {name: host_vars(host) for name, host in hosts.items()},
            "children": dict(sorted(children.items())),
            "vars": {
                "bcp_consortium": config.consortium,
                "bcp_primary_site": config.primary_site,
                "bcp_sites": {name: site.role for name, site in config.sites.items()},
            },
        }
    }
