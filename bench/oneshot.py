"""Benchmark: one-shot incremental ``bcpctl replicate`` against ``rclone sync``, many rounds, alternating.

A one-shot incremental of a few objects is start-up bound, and on a shared two-core host a
single run swings by a factor of two: this repeats it. Each round mutates about 5% of the
data, backs it up and signs it, then every tool ships that change to its own prefix of a
local Ceph RGW in rotating order, then each runs once more with nothing to copy. With
``--before DIR`` (another checkout, e.g. ``git worktree add /tmp/before COMMIT``) that
checkout's bcpctl takes part too, with its own control database, so a change is measured
before and after under the same load. A third row, "library floor", is what any one-shot run
with this project's libraries pays before its first request: a Python that opens the control
database with SQLAlchemy and builds botocore's S3 client, nothing else. Medians of wall time
and of the client's CPU (``RUSAGE_CHILDREN``), the load average beside them.

Usage::

    python -m bench.oneshot --synthetic 256 --rounds 7 [--before /tmp/repl-before]
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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.replication import BUCKET, JOBS, _backup, _children_cpu, _rclone, emit, mutate_tree, synthetic_repository

KINDS = ("incremental", "nothing to copy")

#: SQLAlchemy opening the control database and botocore building the S3 client — what a
#: one-shot run must do before its first request, with the libraries the project prescribes
_FLOOR = """
import sys
import botocore.session
import sqlalchemy

with sqlalchemy.create_engine(sys.argv[1]).connect() as connection:
    connection.execute(sqlalchemy.text("SELECT 1"))
botocore.session.Session().create_client("s3", endpoint_url=sys.argv[2], region_name="default")
"""


def _checkout_env(env: dict[str, str], work: Path, name: str, checkout: Path) -> dict[str, str]:
    """The environment of one checkout's bcpctl: its code first on the path, its own cache and control database."""
    own = {
        **env,
        "PYTHONPATH": str(checkout),
        "BCPCTL_CACHE_DIR": str(work / f"cache-{name}"),
        "BCPCTL_CONTROL_DB": f"sqlite:///{work}/control-{name}.db",
    }
    # ``python -m`` puts the working directory first on the path: each checkout runs from its own
    where = subprocess.run(
        [sys.executable, "-c", "import bcpctl; print(bcpctl.__file__)"],
        env=own,
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    if not Path(where.stdout.strip()).is_relative_to(checkout):
        raise RuntimeError(f"{checkout}: bcpctl is imported from {where.stdout.strip() or where.stderr.strip()}")
    subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "db", "upgrade"], env=own, cwd=checkout, check=True, capture_output=True
    )
    return own


def _replicate(repo: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
    os.sync()
    started, cpu = time.monotonic(), _children_cpu()
    argv = ["replicate", "--from", str(repo), "--to", url, "--jobs", str(JOBS), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", *argv], env=env, cwd=env["PYTHONPATH"], capture_output=True, text=True
    )
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    if done.returncode:
        raise RuntimeError(f"bcpctl replicate failed: {done.stderr.strip()[-400:]}")
    return {"seconds": seconds, "cpu_seconds": cpu, "transfers": json.loads(done.stdout)["runs"][0]["objects_copied"]}


def _library_floor(endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    started, cpu = time.monotonic(), _children_cpu()
    subprocess.run([sys.executable, "-c", _FLOOR, env["BCPCTL_CONTROL_DB"], endpoint], env=env, check=True)
    return {"seconds": time.monotonic() - started, "cpu_seconds": _children_cpu() - cpu, "transfers": 0}


def run_oneshot_bench(mib: int, rounds: int, before: Path | None, work: Path) -> dict[str, Any]:
    from tests.servers.ceph import cleanup, start_ceph

    here = Path(__file__).resolve().parent.parent
    checkouts = {"bcpctl": here, **({"bcpctl-before": before.resolve()} if before else {})}
    env = {**os.environ, "BCPCTL_PASSWORD": os.environ.get("BCPCTL_PASSWORD", "bench-only-passphrase")}
    ceph = start_ceph(work / "ceph", memstore_bytes=max(2 * 1024**3, (len(checkouts) + 2) * mib * 1024**2 * 2))
    try:
        ceph.create_bucket(BUCKET)
        s3 = {**env, **ceph.env()}
        s3.update(
            RCLONE_CONFIG_CEPH_TYPE="s3",
            RCLONE_CONFIG_CEPH_PROVIDER="Ceph",
            RCLONE_CONFIG_CEPH_ENDPOINT=ceph.endpoint,
            RCLONE_CONFIG_CEPH_ACCESS_KEY_ID=ceph.access_key,
            RCLONE_CONFIG_CEPH_SECRET_ACCESS_KEY=ceph.secret_key,
            RCLONE_CONFIG_CEPH_FORCE_PATH_STYLE="true",
        )
        envs = {name: _checkout_env(s3, work, name, path) for name, path in checkouts.items()}
        repo, data = synthetic_repository(work / "primary", mib, envs["bcpctl"])
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            name: partial(_replicate, repo, ceph.url(BUCKET, name), e) for name, e in envs.items()
        }
        runners["rclone"] = partial(_rclone, repo, f"ceph:{BUCKET}/rclone", s3)
        runners["library floor"] = partial(_library_floor, ceph.endpoint, envs["bcpctl"])
        for run in runners.values():
            run()  # the full copy, untimed
        tools = list(runners)
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {k: {t: [] for t in tools} for k in KINDS}
        loads = []
        for n in range(rounds):
            mutate_tree(data, seed=100 + n)
            _backup(repo, data, envs["bcpctl"])
            order = tools[n % len(tools) :] + tools[: n % len(tools)]
            for kind, turn in zip(KINDS, (order, order[::-1]), strict=True):
                for tool in turn:
                    samples[kind][tool].append(runners[tool]())
            loads.append(os.getloadavg()[0])
    finally:
        cleanup(ceph)
    return {
        "repository_mib": mib,
        "rounds": rounds,
        "load_average": [round(min(loads), 1), round(max(loads), 1)] if loads else [],
        "medians": {
            kind: {
                tool: {
                    "seconds": round(statistics.median(r["seconds"] for r in rows), 3),
                    "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in rows), 3),
                    "transfers": [r["transfers"] for r in rows],
                }
                for tool, rows in by_tool.items()
            }
            for kind, by_tool in samples.items()
        },
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['repository_mib']} MiB repository, {report['rounds']} rounds alternating, medians; "
        f"load average {report['load_average']}"
    ]
    for kind, by_tool in report["medians"].items():
        for tool, row in by_tool.items():
            lines.append(f"{kind:16} {tool:14} {row['seconds']:6.2f} s {row['cpu_seconds']:6.2f} CPU-s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=256, metavar="MIB", help="repository size (default 256)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of change and runs (default 7)")
    parser.add_argument("--before", type=Path, help="another checkout whose bcpctl runs in the alternation too")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        parser.error("rclone is not installed (scripts/install-system-deps.sh --bench)")
    work = Path(tempfile.mkdtemp(prefix="bcpctl-bench-oneshot-"))
    try:
        report = run_oneshot_bench(args.synthetic, max(1, args.rounds), args.before, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(report, render(report), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
