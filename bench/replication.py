"""Benchmark: keyless replication by ``bcpctl replicate`` versus ``rclone sync`` of the same directory.

For each target — a local Ceph RADOS Gateway (S3) and a local OpenSSH sshd (SFTP), both
started here on 127.0.0.1 — it measures:

1. full replication of the repository (bcpctl, then rclone to a separate prefix/directory);
2. incremental replication after the primary changed (about 5% of the data mutated and
   backed up again): bytes sent against the bytes of objects that are really new.

Targets from the issue: full throughput ≥ rclone's to the same target; incremental bytes ≤
new objects + 5%. Both tools run with 4 parallel transfers; the full step is repeated
(``--repeat``, default 3) with the tools taking turns at going first, and medians are
reported. rclone runs with its defaults (size/modtime comparison; on SFTP it also asks the
server for checksums when it can).

Usage::

    python -m bench.replication --repo PATH [--data DIR]    # an existing repository
    python -m bench.replication --synthetic 512             # build a 512 MiB one first

With ``--data DIR`` (the directory the repository backs up) the incremental step mutates
about 5% of DIR and backs it up with the real CLI (``BCPCTL_PASSWORD`` must open the
repository); without it, only the full replication is measured. ``bench/dataset.py``'s 1 GiB
dataset and its 5% mutation plug in through :func:`run_replication_bench`'s ``mutate``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.follow import follow_incremental
from bench.installed import compile_packages

JOBS = 4
BUCKET = "bench-replication"
_MB = 1e6


def _bcpctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "bcpctl.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bcpctl {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done


def _bench_env(work: Path) -> dict[str, str]:
    """The benchmark's own cache and control database, created as an installation creates it."""
    env = {**os.environ, "BCPCTL_CACHE_DIR": str(work / "cache"), "BCPCTL_CONTROL_DB": f"sqlite:///{work}/control.db"}
    _bcpctl("db", "upgrade", env=env)
    return env


def _dir_bytes(path: Path) -> tuple[int, set[str]]:
    files = {str(p.relative_to(path)): p.stat().st_size for p in path.rglob("*") if p.is_file()}
    return sum(files.values()), set(files)


def _rclone(source: Path, remote: str, env: dict[str, str]) -> dict[str, Any]:
    # rclone's S3 client refuses a custom CA bundle with its own HTTP transport; the gateway is plain HTTP
    env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
    os.sync()  # neither tool pays for the other's (or the backup's) writeback
    started, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(
        [
            "rclone",
            "sync",
            str(source),
            remote,
            "--config",
            "/dev/null",
            "--transfers",
            str(JOBS),
            "--use-json-log",
            "--stats",
            "1h",
            "--stats-log-level",
            "NOTICE",
            "-v",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    if done.returncode:
        raise RuntimeError(f"rclone sync to {remote} failed: {done.stderr.strip()[-400:]}")
    stats = [json.loads(line)["stats"] for line in done.stderr.splitlines() if '"stats"' in line]
    sent = stats[-1]["bytes"] if stats else 0
    transfers = stats[-1]["transfers"] if stats else 0
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "bytes_sent": sent, "transfers": transfers}


def _replicate(repo: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
    os.sync()
    started, cpu = time.monotonic(), _children_cpu()
    done = _bcpctl("replicate", "--from", str(repo), "--to", url, "--jobs", str(JOBS), "--json", env=env)
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    run = json.loads(done.stdout)["runs"][0]
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "bytes_sent": run["bytes_sent"],
        "transfers": run["objects_copied"],
    }


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: the client's own cost, which
    other work on a shared host changes far less than it changes wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _with_rate(row: dict[str, Any], payload: int) -> dict[str, Any]:
    row["mb_per_s"] = round(payload / _MB / row["seconds"], 1) if row["seconds"] else None
    return row


def mutate_tree(data: Path, fraction: float = 0.05, seed: int = 5) -> int:
    """Overwrite ~``fraction`` of the bytes under ``data`` in place (spread over files); return bytes changed."""
    rng = random.Random(seed)
    files = sorted(p for p in data.rglob("*") if p.is_file())
    budget = int(sum(p.stat().st_size for p in files) * fraction)
    changed = 0
    for path in rng.sample(files, len(files)):
        if changed >= budget:
            break
        size = path.stat().st_size
        span = min(size, budget - changed, 4 * 1024 * 1024)
        if span <= 0:
            continue
        offset = rng.randrange(0, size - span + 1)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(rng.randbytes(span))
        changed += span
    return changed


def synthetic_repository(work: Path, mib: int, env: dict[str, str]) -> tuple[Path, Path]:
    """A dataset of incompressible files (the worst case for both tools) and its backed-up repository."""
    data, repo = work / "data", work / "repo"
    data.mkdir(parents=True)
    rng = random.Random(1)
    for n in range(max(1, mib // 8)):
        (data / f"file-{n:04d}.bin").write_bytes(rng.randbytes(8 * 1024 * 1024))
    _bcpctl("repo", "init", "--repo", str(repo), env=env)
    _backup(repo, data, env)
    return repo, data


def _backup(repo: Path, data: Path, env: dict[str, str]) -> None:
    _bcpctl("backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "bench", env=env)
    _bcpctl("manifest", "sign", "--repo", str(repo), env=env)


def _targets(work: Path, repeat: int) -> tuple[dict[str, dict[str, Any]], Callable[[], None]]:
    from tests.servers.ceph import cleanup as ceph_cleanup
    from tests.servers.ceph import start_ceph
    from tests.servers.sshd import cleanup as sshd_cleanup
    from tests.servers.sshd import start_sshd

    # memstore holds every copy in RAM: 2 tools x repeat full copies of ~0.5 GiB, plus increments
    ceph = start_ceph(work / "ceph", memstore_bytes=(2 * repeat + 2) * 1024**3)
    ceph.create_bucket(BUCKET)
    sshd = start_sshd(work / "sshd")
    s3_env = {
        **ceph.env(),
        "RCLONE_CONFIG_CEPH_TYPE": "s3",
        "RCLONE_CONFIG_CEPH_PROVIDER": "Ceph",
        "RCLONE_CONFIG_CEPH_ENDPOINT": ceph.endpoint,
        "RCLONE_CONFIG_CEPH_ACCESS_KEY_ID": ceph.access_key,
        "RCLONE_CONFIG_CEPH_SECRET_ACCESS_KEY": ceph.secret_key,
        "RCLONE_CONFIG_CEPH_FORCE_PATH_STYLE": "true",
    }
    sftp_env = {
        "BCPCTL_KNOWN_HOSTS": str(sshd.known_hosts),
        "BCPCTL_SSH_KEY": str(sshd.client_key),
        "RCLONE_CONFIG_SSH_TYPE": "sftp",
        "RCLONE_CONFIG_SSH_HOST": sshd.address,
        "RCLONE_CONFIG_SSH_PORT": str(sshd.port),
        "RCLONE_CONFIG_SSH_USER": sshd.user,
        "RCLONE_CONFIG_SSH_KEY_FILE": str(sshd.client_key),
        "RCLONE_CONFIG_SSH_KNOWN_HOSTS_FILE": str(sshd.known_hosts),
    }
    targets = {
        "ceph-rgw": {
            "env": s3_env,
            "bcpctl": [ceph.url(BUCKET, f"bcpctl-{n}") for n in range(repeat)],
            "rclone": [f"ceph:{BUCKET}/rclone-{n}" for n in range(repeat)],
        },
        "sshd": {
            "env": sftp_env,
            "bcpctl": [f"sftp://{sshd.user}@{sshd.address}:{sshd.port}{work}/sftp/bcpctl-{n}" for n in range(repeat)],
            "rclone": [f"ssh:{work}/sftp/rclone-{n}" for n in range(repeat)],
        },
    }

    def stop() -> None:
        ceph_cleanup(ceph)
        sshd_cleanup(sshd)

    return targets, stop


def run_replication_bench(
    repo: Path, *, mutate: Callable[[], None] | None = None, work: Path | None = None, repeat: int = 3
) -> dict[str, Any]:
    """Full (and, with ``mutate``, incremental) replication of ``repo`` by bcpctl and rclone.

    The full step runs ``repeat`` times per tool, each time into a fresh prefix/directory, the
    two tools taking turns at going first: other work on a shared two-core host swings a
    single run by a factor of two, and whichever tool ran first met a cold gateway. The
    table gives each tool's median; every sample is in the JSON.
    """
    work = work or Path(tempfile.mkdtemp(prefix="bcpctl-bench-repl-"))
    env = _bench_env(work)
    repeat = max(1, repeat)
    targets, stop = _targets(work, repeat)
    report: dict[str, Any] = {"repository": str(repo), "jobs": JOBS, "repeat": repeat, "targets": {}}
    try:
        size, before = _dir_bytes(repo)
        report["repository_bytes"] = size
        for name, t in targets.items():
            tenv = {**env, **t["env"]}
            samples: dict[str, list[dict[str, Any]]] = {"bcpctl": [], "rclone": []}
            for rep in range(repeat):
                order = ("bcpctl", "rclone") if rep % 2 == 0 else ("rclone", "bcpctl")
                for tool in order:
                    copy = _replicate if tool == "bcpctl" else _rclone
                    samples[tool].append(_with_rate(copy(repo, t[tool][rep], tenv), size))
            report["targets"][name] = {
                "full": {tool: {**_median(rows), "samples": rows} for tool, rows in samples.items()}
            }
        if mutate is not None:
            mutate()
            _, after = _dir_bytes(repo)
            new = sorted(after - before)
            new_bytes = sum((repo / key).stat().st_size for key in new if key != "manifest")
            manifest = (repo / "manifest").stat().st_size if (repo / "manifest").exists() else 0
            report["incremental_new_objects"] = len(new)
            report["incremental_new_bytes"] = new_bytes + manifest
            for name, t in targets.items():
                tenv = {**env, **t["env"]}
                bcp = _replicate(repo, t["bcpctl"][0], tenv)
                rcl = _rclone(repo, t["rclone"][0], tenv)
                report["targets"][name]["incremental"] = {
                    "bcpctl": _with_rate(bcp, report["incremental_new_bytes"]),
                    "rclone": _with_rate(rcl, report["incremental_new_bytes"]),
                    "bcpctl_bytes_over_new_objects": round(
                        bcp["bytes_sent"] / max(1, report["incremental_new_bytes"]), 4
                    ),
                }
            # a second change, shipped by a running follower (start-up paid before the change)
            # and by a one-shot rclone; the follower's row is its round, CPU its own
            for name, t in targets.items():
                tenv = {**env, **t["env"]}
                _rclone(repo, t["rclone"][0], tenv)  # the previous target's change, untimed
                _, before = _dir_bytes(repo)
                fol = follow_incremental(repo, t["bcpctl"][0], tenv, mutate)
                _, after = _dir_bytes(repo)
                payload = sum((repo / key).stat().st_size for key in after - before)
                rcl = _rclone(repo, t["rclone"][0], tenv)
                report["targets"][name]["incremental, follower"] = {
                    "bcpctl": _with_rate(fol, payload),
                    "rclone": _with_rate(rcl, payload),
                }
    finally:
        stop()
    return report


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (an actual run, so its figures belong together)."""
    return dict(sorted(rows, key=lambda r: r["seconds"])[(len(rows) - 1) // 2])


def render(report: dict[str, Any]) -> str:
    lines = [
        f"repository {report['repository']}: {report['repository_bytes'] / _MB:.0f} MB, {report['jobs']} jobs, "
        f"full step: median of {report.get('repeat', 1)} runs per tool, the tools taking turns at going first"
    ]
    lines.append(f"{'target':10} {'step':22} {'tool':7} {'seconds':>8} {'CPU-s':>6} {'MB/s':>7} {'bytes sent':>14}")
    for name, steps in report["targets"].items():
        for step, tools in steps.items():
            for tool in ("bcpctl", "rclone"):
                row = tools[tool]
                spread = ""
                if len(row.get("samples", ())) > 1:
                    spread = "  (runs: " + ", ".join(f"{r['seconds']:.1f}" for r in row["samples"]) + " s)"
                lines.append(
                    f"{name:10} {step:22} {tool:7} {row['seconds']:8.1f} {row.get('cpu_seconds', 0):6.1f} "
                    f"{row['mb_per_s'] or 0:7.1f} "
                    f"{row['bytes_sent']:14,d}{spread}"
                )
    if "incremental_new_bytes" in report:
        lines.append(
            f"incremental: {report['incremental_new_objects']} new objects, {report['incremental_new_bytes']:,d} bytes"
        )
    return "\n".join(lines)


def emit(report: dict[str, Any], table: str, out: Path | None) -> None:
    """The JSON report on stdout (and in ``out``), its table on stderr."""
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n")
    print(text)
    print(table, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, help="a local bcpctl repository directory")
    parser.add_argument(
        "--data", type=Path, help="the directory the repository backs up (enables the incremental step)"
    )
    parser.add_argument(
        "--synthetic", type=int, metavar="MIB", help="build a dataset and repository of this size first"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="full replications per tool and target (median; default 3)"
    )
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        parser.error("rclone is not installed (scripts/install-system-deps.sh --bench)")
    compile_packages()
    work = Path(tempfile.mkdtemp(prefix="bcpctl-bench-repl-"))
    env = _bench_env(work)
    if args.synthetic:
        env.setdefault("BCPCTL_PASSWORD", "bench-only-passphrase")
        os.environ.setdefault("BCPCTL_PASSWORD", env["BCPCTL_PASSWORD"])
        repo, data = synthetic_repository(work / "primary", args.synthetic, env)
    elif args.repo:
        repo, data = args.repo, args.data
    else:
        parser.error("give --repo PATH or --synthetic MIB")

    seeds = iter(range(5, 1000))

    def step() -> None:
        mutate_tree(data, seed=next(seeds))  # each call another change
        _backup(repo, data, env)

    try:
        report = run_replication_bench(repo, mutate=step if data else None, work=work, repeat=args.repeat)
    finally:
        # every copy the targets received lives here too (sftp trees, ceph data): ~3 GB a run
        shutil.rmtree(work, ignore_errors=True)
    emit(report, render(report), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
