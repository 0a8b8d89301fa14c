"""Quick facts about a host over direct SSH: who it is, its load, memory and disk.

Faster than the health playbook (one SSH round trip, no Python on the target), for an
operator checking a host by hand or a drill checking its target before it starts. The
remote side is plain POSIX shell reading /proc, so it works on any Linux host.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dc.errors import N_, BcpError, ProblemFound
from dc.inventory import ManagedHost
from dc.ssh import exec_command


def facts_command(disk_path: str = "/") -> str:
    path = shlex.quote(disk_path)
    return "; ".join(
        [
            'echo "hostname=$(hostname)"',
            'echo "kernel=$(uname -sr)"',
            'sed -n \'s/^PRETTY_NAME="\\{0,1\\}\\([^"]*\\)"\\{0,1\\}$/os=\\1/p\' /etc/os-release 2>/dev/null',
            'echo "cpus=$(getconf _NPROCESSORS_ONLN)"',
            "echo \"uptime_seconds=$(cut -d' ' -f1 /proc/uptime)\"",
            "echo \"load=$(cut -d' ' -f1-3 /proc/loadavg)\"",
            'awk \'/^MemTotal:/{print "mem_total_kb="$2} /^MemAvailable:/{print "mem_available_kb="$2}\' /proc/meminfo',
            f'df -P -B1 {path} | awk \'NR==2{{print "disk_total_bytes="$2; print "disk_free_bytes="$4}}\'',
            f"echo disk_path={path}",
        ]
    )


@dataclass(frozen=True)
class HostFacts:
    host: str
    hostname: str
    kernel: str
    os: str
    cpus: int
    uptime_seconds: float
    load1: float
    load5: float
    load15: float
    mem_total_kb: int
    mem_available_kb: int
    disk_path: str
    disk_total_bytes: int
    disk_free_bytes: int


def parse_facts(host: str, text: str) -> HostFacts:
    """Parse the ``key=value`` lines of :func:`facts_command` (pure; tested directly)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    try:
        load = [float(x) for x in values["load"].split()[:3]]
        return HostFacts(
            host=host,
            hostname=values["hostname"],
            kernel=values.get("kernel", ""),
            os=values.get("os", ""),
            cpus=int(values.get("cpus") or 0),
            uptime_seconds=float(values["uptime_seconds"]),
            load1=load[0],
            load5=load[1],
            load15=load[2],
            mem_total_kb=int(values["mem_total_kb"]),
            mem_available_kb=int(values["mem_available_kb"]),
            disk_path=values.get("disk_path", "/"),
            disk_total_bytes=int(values["disk_total_bytes"]),
            disk_free_bytes=int(values["disk_free_bytes"]),
        )
    except (KeyError, ValueError, IndexError) as exc:
        raise ProblemFound(N_("{host}: unexpected facts output (missing or bad {exc})"), host=host, exc=exc) from None


def gather_facts(host: ManagedHost) -> HostFacts:
    """Facts of one host; the disk measured is the one holding its ``bcp_root`` (default /)."""
    result = exec_command(host, facts_command(str(host.vars.get("bcp_root", "/"))), timeout=30)
    if result.exit_status != 0 and not result.stdout:
        raise ProblemFound(
            N_("{name}: facts command failed: {stderr}"), name=host.name, stderr=result.stderr.strip()[:200]
        )
    return parse_facts(host.name, result.stdout)


@dataclass(frozen=True)
class FactsOutcome:
    """One host's facts, or why there are none (``exit_code`` 3 for a refused host key)."""

    host: str
    facts: HostFacts | None
    error: str | None = None
    exit_code: int = 0


def gather_many(hosts: list[ManagedHost], *, workers: int = 8) -> list[FactsOutcome]:
    """Facts of several hosts in parallel; one host's failure never hides the others' facts."""

    def one(host: ManagedHost) -> FactsOutcome:
        try:
            return FactsOutcome(host.name, gather_facts(host))
        except BcpError as exc:
            return FactsOutcome(host.name, None, exc.message, exc.exit_code)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        return list(pool.map(one, hosts))
