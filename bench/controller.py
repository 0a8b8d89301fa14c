"""``--scale-controller``: a whole prefecture on one controller (issue 23).

44 towns × 33 systems = 1,452 tiny ``path:`` sources under one real ``bcpctl serve``: per town
5 tier-1 systems every 7.5 min, 10 tier-2 every 30 min, 18 others twice a day (~0.75 backups/s,
the issue's shape). Over a window the controller's CPU (its own and its forked readers', from
``/proc``) is divided by the wall time and by the backups it ran; missed runs come from the
scheduler's own counters; ``/metrics`` is scraped and timed. Then the same again with ten
times the snapshot history in the repository (planted snapshots of another source of the same
systems: they count in every listing and in retention, never as a parent).

``--index-demo N`` separately shows the local snapshot index answering a parent lookup in a
repository of N snapshots (default 100,000), against the old whole-repository listing.

The issue's window is 30 minutes; ``--window`` shortens it (the report says which was used).
The figures depend on what else the machine runs: quote ``uptime`` beside them.

    python -m bench.controller [--window 1800] [--towns 44] [--per-town 33] [--history 1]
                               [--factor 10] [--index-demo 100000] [--sign-demo 16000]
                               [--out bench/out/controller.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.signdemo import sign_demo

#: per town: (systems, schedule) — tier 1, tier 2, the rest (issue 23)
TIERS = ((5, "450s", 1), (10, "30m", 2), (18, "12h", 3))
PASSWORD = "bench controller passphrase"
#: the issue's targets
CPU_SHARE_MAX = 0.25
PER_JOB_CPU_MAX = 0.050
METRICS_MAX = 0.200


@dataclass
class Phase:
    label: str
    snapshots_before: int
    window: float
    backups: int
    failures: int
    missed: int
    cpu_seconds: float
    cpu_share: float
    cpu_per_job: float
    metrics_seconds: float
    metrics_series: int
    load_average: str


def _municipality(town: int) -> tuple[str, str]:
    """``(name, lg_code)``: 茨城県's real municipalities first (their codes are checked against
    their names), then made-up ones in a prefecture the bundled table does not cover."""
    from dc.lgcodes import lg_code_check_digit, table

    real = sorted(table().values(), key=lambda m: m.code)
    if town < len(real):
        return real[town].name, real[town].code
    first = f"47{town:03d}"
    return f"町{town:02d}", first + str(lg_code_check_digit(first))


def build(root: Path, towns: int, per_town: int) -> Path:
    """Config, sources, control database and repository (real Argon2id defaults) under ``root``."""
    from backup.opening import init_repository
    from dc.state import open_state
    from storage.url import open_backend

    tiers = [(n * per_town // 33, every, tier) for n, every, tier in TIERS]
    tiers[-1] = (per_town - sum(n for n, _e, _t in tiers[:-1]), tiers[-1][1], tiers[-1][2])
    tenants, systems = {}, {}
    for town in range(towns):
        tenant = f"town{town:02d}"
        name, code = _municipality(town)
        tenants[tenant] = {"name": name, "lg_code": code, "population": 10000 + town}
        i = 0
        for count, every, tier in tiers:
            for _ in range(count):
                system_id = f"{tenant}-s{i:02d}"
                source = root / "sources" / system_id
                source.mkdir(parents=True, exist_ok=True)
                (source / "records.csv").write_text(f"{system_id},住民,{i}\n" * 20)  # ~500 bytes
                systems[system_id] = {
                    "tenant": tenant,
                    "business": "住民基本台帳",
                    "tier": tier,
                    "schedule": every,
                    "source": {"kind": "path", "path": str(source)},
                }
                i += 1
    raw = {
        "consortium": "bench-prefecture",
        "control_db": f"sqlite:///{root / 'control.db'}",
        "sites": {
            "primary": {"prefecture": "茨城県", "role": "primary", "repository": str(root / "primary")},
            "offsite": {"prefecture": "北海道", "role": "offsite", "repository": str(root / "offsite")},
        },
        "tenants": tenants,
        "systems": systems,
        "hosts": {},
        "schedules": {"backup": None, "replicate": None, "check": None, "drill": None, "health": None},
    }
    config = root / "bcpctl.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    open_state(f"sqlite:///{root / 'control.db'}", create=True).dispose()
    # format 1 here: ``--manifest-format 2`` converts it (upgrade below), as an existing primary would
    init_repository(open_backend(str(root / "primary"), create=True), PASSWORD, manifest_format=1)
    return config


def upgrade(repo_path: Path, kdf_cache: Path) -> None:
    """``bcpctl manifest sign --chain``: the primary signs format 2 from now on."""
    from backup.manifest import sign_manifest
    from backup.opening import open_repository
    from storage.local import LocalBackend

    os.environ["BCPCTL_CACHE_DIR"] = str(kdf_cache)
    with open_repository(LocalBackend(repo_path), PASSWORD, sign_on_close=False) as repo:
        sign_manifest(repo, chain=True, checkpoint=True)


def plant_history(repo_path: Path, systems: list[str], per_system: int, *, kdf_cache: Path) -> int:
    """``per_system`` snapshots of an old source for each system, through the library."""
    from backup.opening import open_repository
    from backup.snapshot import Snapshot, save_snapshot
    from storage.local import LocalBackend

    os.environ["BCPCTL_CACHE_DIR"] = str(kdf_cache)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with open_repository(LocalBackend(repo_path), PASSWORD) as repo:

        def one(job: tuple[str, int]) -> None:
            system, n = job
            snapshot = Snapshot(
                time=base + timedelta(hours=n),
                hostname="bench",
                username="bench",
                source_kind="path",
                source_spec="/history/retired-source",
                tree=("0" * 64,),
                system=system,
                tenant=system.partition("-")[0],
            )
            save_snapshot(repo, snapshot)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, [(s, n) for s in systems for n in range(per_system)]))
    return sum(1 for _ in (repo_path / "snapshots").rglob("*") if _.is_file())


def warm(config: Path, root: Path) -> int:
    """One backup of every system that fires within a short window (tiers 1 and 2), so the
    window measures unchanged sources, as a controller runs them day after day."""
    from backup.jobs import backup_systems, site_repository
    from backup.keyring import KeyRing
    from dc.config import load_config

    os.environ["BCPCTL_CACHE_DIR"] = str(root / "cache")
    os.environ["BCPCTL_PASSWORD"] = PASSWORD
    consortium, _where = load_config(config)
    chosen = [s for s, system in consortium.systems.items() if system.tier in (1, 2)]
    ring = KeyRing()

    def one(batch: list[str]) -> int:
        with site_repository(consortium, "primary", keyring=ring) as repo:
            return sum(o.ok for o in backup_systems(consortium, repo, batch))

    batches = [chosen[i : i + 50] for i in range(0, len(chosen), 50)]
    with ThreadPoolExecutor(2) as pool:
        done = sum(pool.map(one, batches))
    ring.close()
    return done


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (forked readers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    total = _proc_cpu(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += _proc_cpu(int(child))
    return total


def _stats(control_db: str) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from dc.state import open_state
    from monitoring.runs import job_stats

    engine = open_state(control_db)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(func.sum(job_stats.c.runs), func.sum(job_stats.c.failures), func.sum(job_stats.c.missed))
            ).one()
    finally:
        engine.dispose()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def _scrape(port: int) -> tuple[float, int]:
    times, series = [], 0
    for _ in range(5):
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            body = response.read().decode()
        times.append(time.perf_counter() - started)
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return sorted(times)[len(times) // 2], series


def run_phase(label: str, root: Path, config: Path, window: float, port: int, metrics_refresh: float = 0.0) -> Phase:
    control_db = f"sqlite:///{root / 'control.db'}"
    env = {**os.environ, "BCPCTL_PASSWORD": PASSWORD, "BCPCTL_CACHE_DIR": str(root / "cache")}
    log = open(root / f"serve-{label.split()[1]}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
        + (["--metrics-refresh", str(metrics_refresh)] if metrics_refresh else []),
        stdout=log,
        stderr=log,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                    if json.loads(response.read()).get("role") == "leader":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"bench.controller: serve did not become leader (see {log.name})")
            time.sleep(0.5)
        snapshots = sum(1 for p in (root / "primary" / "snapshots").rglob("*") if p.is_file())
        runs0, failures0, missed0 = _stats(control_db)
        cpu0, wall0 = _tree_cpu(proc.pid), time.monotonic()
        time.sleep(window)
        cpu1, wall1 = _tree_cpu(proc.pid), time.monotonic()
        runs1, failures1, missed1 = _stats(control_db)
        metrics_seconds, series = _scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    backups = runs1 - runs0
    cpu = cpu1 - cpu0
    return Phase(
        label=label,
        snapshots_before=snapshots,
        window=round(wall1 - wall0, 1),
        backups=backups,
        failures=failures1 - failures0,
        missed=missed1 - missed0,
        cpu_seconds=round(cpu, 2),
        cpu_share=round(cpu / (wall1 - wall0), 3),
        cpu_per_job=round(cpu / backups, 4) if backups else float("nan"),
        metrics_seconds=round(metrics_seconds, 3),
        metrics_series=series,
        load_average=Path("/proc/loadavg").read_text().strip(),
    )


def index_demo(root: Path, count: int) -> dict[str, float]:
    """Parent lookup in a repository of ``count`` snapshots: local index vs the whole listing."""
    from backup.opening import init_repository, open_repository
    from backup.snapindex import SnapshotIndex
    from backup.snapshot import list_snapshots
    from storage.local import LocalBackend

    repo_path = root / "index-demo"
    cheap = {"memory_kib": 8192, "iterations": 1, "lanes": 1}
    if not (repo_path / "config").exists():
        init_repository(LocalBackend(repo_path, create=True), PASSWORD, kdf=cheap)
    systems = [f"sys{i:04d}" for i in range(1452)]
    have = (
        sum(1 for p in (repo_path / "snapshots").rglob("*") if p.is_file()) if (repo_path / "snapshots").exists() else 0
    )
    if have < count:
        plant_history(repo_path, systems, -(-(count - have) // len(systems)), kdf_cache=root / "cache")
    os.environ["BCPCTL_CACHE_DIR"] = str(root / "cache")
    result: dict[str, float] = {}
    with open_repository(LocalBackend(repo_path), PASSWORD) as repo:
        started = time.perf_counter()
        index = SnapshotIndex(repo)
        index.ensure()
        result["index_build_seconds"] = round(time.perf_counter() - started, 2)
        result["snapshots"] = index.count()
        started, cpu = time.perf_counter(), time.process_time()
        for system in systems[:100]:
            index.newest(system, "path:/history/retired-source")
        result["index_parent_lookup_seconds"] = round((time.perf_counter() - started) / 100, 5)
        result["index_parent_lookup_cpu_seconds"] = round((time.process_time() - cpu) / 100, 6)
        # a source's first backup: no row of it, whatever the system's history holds
        cpu = time.process_time()
        for system in systems[:100]:
            index.newest(system, "path:/a-new-source")
        result["index_first_parent_lookup_cpu_seconds"] = round((time.process_time() - cpu) / 100, 6)
        started = time.perf_counter()
        list_snapshots(repo, system=systems[0])
        result["listing_parent_lookup_seconds"] = round(time.perf_counter() - started, 2)
    return result


def verdicts(phases: list[Phase]) -> list[tuple[str, bool, str]]:
    rows = []
    for p in phases:
        rows.append((f"{p.label}: controller CPU < 25% of a core", p.cpu_share < CPU_SHARE_MAX, f"{p.cpu_share:.1%}"))
        rows.append(
            (f"{p.label}: CPU per job < 50 ms", p.cpu_per_job < PER_JOB_CPU_MAX, f"{p.cpu_per_job * 1000:.1f} ms")
        )
        rows.append(
            (f"{p.label}: no missed run", p.missed == 0 and p.failures == 0, f"{p.missed} missed, {p.failures} failed")
        )
        rows.append(
            (f"{p.label}: /metrics < 200 ms", p.metrics_seconds < METRICS_MAX, f"{p.metrics_seconds * 1000:.0f} ms")
        )
    return rows


def _say(p: Phase) -> None:
    print(
        f"{p.label}: {p.backups} backups in {p.window:.0f} s, {p.snapshots_before} snapshots before, "
        f"CPU {p.cpu_seconds} s ({p.cpu_share:.1%} of a core), {p.cpu_per_job * 1000:.1f} ms/job, "
        f"{p.missed} missed, {p.failures} failed, "
        f"/metrics {p.metrics_seconds * 1000:.0f} ms for {p.metrics_series} series; load {p.load_average}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.controller", description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=1800.0, help="seconds measured per phase (issue: 1800)")
    parser.add_argument("--towns", type=int, default=44)
    parser.add_argument("--per-town", type=int, default=33)
    parser.add_argument("--history", type=int, default=1, help="planted snapshots per system in the first phase")
    parser.add_argument("--factor", type=int, default=10, help="history multiplier of the second phase (0: skip)")
    parser.add_argument(
        "--index-demo", type=int, default=0, metavar="N", help="also time a parent lookup among N snapshots"
    )
    parser.add_argument(
        "--sign-demo", type=int, default=0, metavar="N", help="also time a manifest signature among N snapshots"
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/controller"))
    parser.add_argument("--out", type=Path, default=Path("bench/out/controller.json"))
    parser.add_argument("--port", type=int, default=18923)
    parser.add_argument("--metrics-refresh", type=float, default=15.0, help="serve --metrics-refresh (0: per scrape)")
    parser.add_argument(
        "--manifest-format", type=int, choices=(1, 2), default=2, help="the primary's manifest format (2: a chain)"
    )
    args = parser.parse_args(argv)
    root = args.workdir.resolve()
    report: dict[str, object] = {
        "window": args.window,
        "towns": args.towns,
        "per_town": args.per_town,
        "manifest_format": args.manifest_format,
    }
    if args.index_demo:
        report["index_demo"] = index_demo(root, args.index_demo)
        print(f"index demo: {report['index_demo']}")
    if args.sign_demo:
        report["sign_demo"] = sign_demo(root, args.sign_demo, PASSWORD, plant_history)
        print(f"sign demo: {report['sign_demo']}")
    phases = []
    if args.window > 0:
        import shutil

        shutil.rmtree(root / "prefecture", ignore_errors=True)
        work = root / "prefecture"
        config = build(work, args.towns, args.per_town)
        if args.manifest_format == 2:
            upgrade(work / "primary", work / "cache")
        from dc.config import load_config

        systems = list(load_config(config)[0].systems)
        plant_history(work / "primary", systems, args.history, kdf_cache=work / "cache")
        print(f"warm-up: {warm(config, work)} backups of the systems that fire within the window", flush=True)
        phases.append(
            run_phase(f"history x1 ({args.history}/system)", work, config, args.window, args.port, args.metrics_refresh)
        )
        _say(phases[-1])
        if args.factor > 1:
            plant_history(work / "primary", systems, args.history * (args.factor - 1), kdf_cache=work / "cache")
            label = f"history x{args.factor} ({args.history * args.factor}/system)"
            phases.append(run_phase(label, work, config, args.window, args.port, args.metrics_refresh))
            _say(phases[-1])
    report["phases"] = [asdict(p) for p in phases]
    rows = verdicts(phases)
    report["targets"] = [{"target": t, "pass": ok, "value": v} for t, ok, v in rows]
    for target, ok, value in rows:
        print(f"  {'PASS' if ok else 'FAIL'}  {target}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), "utf-8")
    return 0 if all(ok for _t, ok, _v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
