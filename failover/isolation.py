"""Proving the drill sandbox cannot reach production, without sending traffic anywhere else.

A drill must never write into a production database or reach LGWAN, the 住基ネット CS or
tax interfaces (research §C.3). Two checks, run by the readiness drill:

1. the sandbox is not production: the drill server is none of the production database
   endpoints (sources at the primary, failover targets at the offsite) and the drill
   directory neither is nor contains nor lies inside a production path;
2. with ``drills.sandbox_netns``, the sandbox network has no path to any production endpoint:
   a route lookup inside the namespace (``ip -n NS route get ADDR``, which sends nothing) must
   fail or end in a blackhole/unreachable/prohibit route; for a loopback endpoint, a TCP
   connect from inside the namespace (to the namespace's own loopback) must be refused.

Traffic rule: this module only ever sends packets to loopback inside a namespace; any other
address is judged from the routing table alone.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dc.config import Consortium, Site
from dc.errors import N_, Message
from failover.results import Check


@dataclass(frozen=True)
class Endpoint:
    what: str
    host: str
    port: int


def _dsn_endpoint(what: str, dsn: str) -> Endpoint | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return None
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    return Endpoint(what, host, int(params.get("port") or 5432))


def production_endpoints(config: Consortium) -> list[Endpoint]:
    """Every production address a sandbox must not reach: databases and the primary's hosts."""
    found: list[Endpoint] = []
    for name, system in config.systems.items():
        if system.source.kind in ("postgres", "postgres-wal") and (
            ep := _dsn_endpoint(f"{name} source", system.source.dsn or "")
        ):
            found.append(ep)
        if system.restore_dsn and (ep := _dsn_endpoint(f"{name} failover target", system.restore_dsn)):
            found.append(ep)
    for name, host in config.hosts.items():
        if host.site == config.primary_site:
            found.append(Endpoint(f"host {name}", host.address, host.port))
    return found


def production_paths(config: Consortium, config_dir: Path | None) -> list[tuple[str, Path]]:
    paths = []
    for name, system in config.systems.items():
        if system.source.kind in ("path", "sqlite") and system.source.path:
            paths.append((f"{name} source", _resolve(system.source.path, config_dir)))
        if system.restore_dir:
            paths.append((f"{name} failover target", _resolve(system.restore_dir, config_dir)))
    return paths


def _resolve(path: str, config_dir: Path | None) -> Path:
    p = Path(path)
    return (config_dir / p if config_dir and not p.is_absolute() else p).absolute()


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def sandbox_not_production(config: Consortium, site: Site, config_dir: Path | None) -> list[Check]:
    """The drill server and directory are not production; sharing a server is a warning detail."""
    checks = []
    if site.drill_dsn:
        drill = _dsn_endpoint("drill server", site.drill_dsn)
        shared = [
            e.what for e in production_endpoints(config) if drill and (e.host, e.port) == (drill.host, drill.port)
        ]
        detail = (
            Message(
                N_(
                    "drill server {host}:{port} also serves {names}: sandboxes are separate databases "
                    "but compete with production for that server"
                ),
                host=drill.host,
                port=drill.port,
                names=", ".join(shared[:3]),
            )
            if shared and drill
            else Message(N_("drill server is not a production database server"))
        )
        checks.append(Check("drill server is not production", True, detail))
    if site.drill_dir:
        drill_dir = _resolve(site.drill_dir, config_dir)
        clash = [what for what, path in production_paths(config, config_dir) if _overlaps(drill_dir, path)]
        checks.append(
            Check(
                "drill directory is not production",
                not clash,
                Message(N_("{path} overlaps {names}"), path=drill_dir, names=", ".join(clash))
                if clash
                else str(drill_dir),
            )
        )
    return checks


def route_isolated(netns: str, endpoint: Endpoint) -> Check:
    """No path from ``netns`` to ``endpoint``: a route lookup, or a loopback probe inside the namespace."""
    name = f"no route from {netns} to {endpoint.what}"
    try:
        address = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return Check(
            name,
            False,
            Message(N_("{host} is a name; give production endpoints as addresses to check them"), host=endpoint.host),
        )
    if address.is_loopback:
        return _loopback_probe(netns, endpoint, name)
    done = subprocess.run(
        ["ip", "-n", netns, "route", "get", str(address)], capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no route"])[-1]
        if "Cannot open network namespace" in reason or "No such file" in reason:
            return Check(name, False, Message(N_("namespace {netns} does not exist"), netns=netns))
        return Check(name, True, f"{address}: {reason}")
    first = done.stdout.split()[0] if done.stdout.split() else ""
    if first in ("blackhole", "unreachable", "prohibit"):
        return Check(name, True, Message(N_("{address}: {first} route"), address=address, first=first))
    return Check(
        name,
        False,
        Message(
            N_("{address} is routable from {netns}: {value}"),
            address=address,
            netns=netns,
            value=done.stdout.strip().splitlines()[0],
        ),
    )


_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError as exc:
    print(exc.strerror or exc); sys.exit(0)
print('connected'); sys.exit(1)
"""


def _loopback_probe(netns: str, endpoint: Endpoint, name: str) -> Check:
    if os.geteuid() != 0:
        return Check(
            name, False, Message(N_("entering a network namespace needs root; run the readiness drill as root"))
        )
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _PROBE, endpoint.host, str(endpoint.port)],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    detail = (done.stdout or done.stderr).strip().splitlines()
    text = detail[-1] if detail else f"exit {done.returncode}"
    if done.returncode == 0:
        return Check(
            name,
            True,
            Message(
                N_("{host}:{port} from {netns}: {text}"), host=endpoint.host, port=endpoint.port, netns=netns, text=text
            ),
        )
    if "connected" in text:
        return Check(
            name,
            False,
            Message(N_("{host}:{port} answers inside {netns}"), host=endpoint.host, port=endpoint.port, netns=netns),
        )
    return Check(name, False, Message(N_("could not probe from {netns}: {text}"), netns=netns, text=text))
