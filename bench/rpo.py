"""RPO under load, measured offsite (``python -m bench.rpo``): issue target ≤ 60 s.

A PostgreSQL primary under a steady pgbench write load archives every WAL file with the real
``bcpctl wal push`` (its ``archive_command``, through the loopback relay of
``tests/backup/walsite.py``: PostgreSQL runs as ``postgres``, this Python as root), and
``bcpctl replicate --follow`` ships the repository to a local Ceph RGW. Every second during the
load it samples, from listings of both sites (not from the follower's own bookkeeping):

* ``offsite_rpo``: now − when the newest WAL object the offsite holds was archived at the
  primary — what a disaster now would lose beyond the primary's own unarchived WAL;
* ``follower_lag``: when the primary's newest WAL object was archived − the same for the
  offsite's (the part ``replicate --follow`` adds; what ``bcp_recovery_point_lag_seconds``
  reports), and that metric's value in the control database alongside;
* ``archive_age``: now − the primary's newest archived WAL (PostgreSQL's segment filling and
  ``archive_timeout``: not replication's share);
* ``ship_delay``, per WAL object: from its archiving at the primary to the first sample that
  finds it offsite (an upper bound: samples are a second apart).

It also reports the follower's own CPU seconds per minute of following. The figures are the
median, 95th percentile and maximum over the samples. The repository holds WAL only (no base
backup): a snapshot travels in a full round like any ``replicate``, measured by
``bench/replication.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUCKET = "bench-rpo"
TARGET_SECONDS = 60.0


def _newest_archived(source: dict[str, float], keys: set[str]) -> float | None:
    times = [source[k] for k in keys if k in source]
    return max(times) if times else None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one running process (children's rusage would mix in pgbench and the pushes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"samples": 0}
    ordered = sorted(values)
    return {
        "samples": len(values),
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def run(scale: int, seconds: int, clients: int, interval: float, archive_timeout: int) -> dict[str, Any]:
    from backup.walarchive import WAL_PREFIX
    from dc.state import open_state
    from replication.ledger import Ledger
    from storage.local import LocalBackend
    from storage.url import open_backend
    from tests.backup.walsite import SYSTEM, wal_site
    from tests.servers.ceph import cleanup, start_ceph
    from tests.servers.postgres import _bin

    work = Path(tempfile.mkdtemp(prefix="bcpctl-bench-rpo-"))
    ceph = start_ceph(work / "ceph", memstore_bytes=4 * 1024**3)
    ceph.create_bucket(BUCKET)
    env = {k: v for k, v in os.environ.items() if k != "BCPCTL_PASSWORD"} | ceph.env()
    env["BCPCTL_CONTROL_DB"] = f"sqlite:///{work / 'control.db'}"
    env["BCPCTL_CACHE_DIR"] = str(work / "cache")
    saved = {name: os.environ.get(name) for name in ceph.env()}
    os.environ.update(ceph.env())  # this process lists the offsite too; put back in the end
    subprocess.run([sys.executable, "-m", "bcpctl.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    url = ceph.url(BUCKET, "offsite")
    results: dict[str, Any] = {"scale": scale, "load_seconds": seconds, "clients": clients, "interval": interval}
    try:
        with wal_site(env) as site:
            site.sql(f"ALTER SYSTEM SET archive_timeout = '{archive_timeout}s'")
            site.sql("SELECT pg_reload_conf()")
            pgbench = [_bin("pgbench"), "-h", "127.0.0.1", "-p", str(site.cluster.port), "-U", "postgres"]
            subprocess.run(
                [*pgbench, "-i", "-q", "-s", str(scale), "postgres"], env=env, check=True, capture_output=True
            )
            source, target = LocalBackend(site.repo), open_backend(url)
            follower = subprocess.Popen(
                [sys.executable, "-m", "bcpctl.cli", "replicate", "--from", str(site.repo), "--to", url,
                 "--follow", "--interval", str(interval), "--json"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            ledger = Ledger(open_state(env["BCPCTL_CONTROL_DB"]))
            load = subprocess.Popen(
                [*pgbench, "-c", str(clients), "-T", str(seconds), "-n", "postgres"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            started = time.monotonic()
            samples: dict[str, list[float]] = {
                "offsite_rpo": [], "follower_lag": [], "archive_age": [], "metric": [], "ship_delay": []
            }  # fmt: skip
            seen: set[str] = set()
            while load.poll() is None:
                time.sleep(1.0)
                src = {i.key: i.mtime for i in source.list(WAL_PREFIX)}
                held = {i.key for i in target.list(WAL_PREFIX)}
                now = time.time()
                samples["ship_delay"] += [now - src[k] for k in held - seen if k in src]
                seen |= held
                primary_newest = max(src.values(), default=None)
                offsite_newest = _newest_archived(src, held)
                if primary_newest is None or offsite_newest is None:
                    continue  # nothing archived yet at one of the sites
                samples["archive_age"].append(now - primary_newest)
                samples["offsite_rpo"].append(now - offsite_newest)
                samples["follower_lag"].append(primary_newest - offsite_newest)
                lag = {row.system: row for row in ledger.lag()}.get(SYSTEM)
                if lag is not None and lag.recovery_point_lag_seconds is not None:
                    samples["metric"].append(lag.recovery_point_lag_seconds)
            results["load_wall_seconds"] = round(time.monotonic() - started, 1)
            follower_cpu = _cpu_seconds(follower.pid)
            follower.terminate()
            out, err = follower.communicate(timeout=120)
            events = [json.loads(line) for line in out.splitlines() if line.strip()]
            stopped = events[-1] if events and events[-1].get("event") == "stopped" else {}
            results["follower"] = {
                "exit": follower.returncode,
                "rounds": stopped.get("rounds"),
                "objects_copied": stopped.get("objects_copied"),
                "bytes_sent": stopped.get("bytes_sent"),
                "problems": stopped.get("problems"),
                "cpu_seconds": round(follower_cpu, 2),
                "cpu_seconds_per_minute": round(60 * follower_cpu / max(1.0, stopped.get("seconds") or 1.0), 2),
                "stderr": err.strip()[-300:],
            }
            results["wal_objects_archived"] = sum(1 for _ in source.list(WAL_PREFIX))
            results["samples"] = {name: _stats(values) for name, values in samples.items()}
    finally:
        cleanup(ceph)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(work, ignore_errors=True)
    rpo = results["samples"]["offsite_rpo"]
    results["measured_at"] = datetime.now(UTC).isoformat()
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    results["pass"] = {"rpo_under_load": bool(rpo.get("samples")) and rpo["max"] <= TARGET_SECONDS}
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"RPO under load (pgbench scale {results['scale']}, {results['clients']} clients, "
        f"{results['load_seconds']} s; follower --interval {results['interval']} s; "
        f"{results['wal_objects_archived']} WAL objects), seconds:",
        f"{'measure':14} {'median':>7} {'p95':>7} {'max':>7} {'samples':>8}",
    ]
    for name, row in results["samples"].items():
        if row.get("samples"):
            lines.append(f"{name:14} {row['median']:7.1f} {row['p95']:7.1f} {row['max']:7.1f} {row['samples']:8d}")
    f = results["follower"]
    lines.append(
        f"follower: {f['rounds']} rounds, {f['objects_copied']} objects, {f['cpu_seconds']} CPU-s "
        f"({f['cpu_seconds_per_minute']} CPU-s/min), exit {f['exit']}; load average {results['load_average']}"
    )
    lines.append(
        f"target offsite RPO <= {TARGET_SECONDS:.0f} s: {'PASS' if results['pass']['rpo_under_load'] else 'FAIL'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale factor")
    parser.add_argument("--seconds", type=int, default=60, help="duration of the steady pgbench load")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients")
    parser.add_argument("--interval", type=float, default=1.0, help="replicate --follow --interval")
    parser.add_argument("--archive-timeout", type=int, default=15, help="PostgreSQL archive_timeout (seconds)")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    results = run(args.scale, args.seconds, args.clients, args.interval, args.archive_timeout)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    print(table(results), file=sys.stderr)
    return 0 if results["pass"]["rpo_under_load"] else 1


if __name__ == "__main__":
    sys.exit(main())
