"""PostgreSQL continuous archiving: bcpctl against pgBackRest (``python -m bench.wal``).

Two phases, both tools encrypted (bench/walarchives.py has each archive's settings):

- archive push: each tool drains the same backlog of ready segments of pgbench WAL, where the
  archiver and nothing else is the bottleneck, synchronously (one process per segment) and
  asynchronously (bcpctl's ``wal push-daemon``, pgBackRest's ``archive-async``), CPU of every
  process counted, tools taking turns, medians (bench/waldrain.py). ``--push-only`` stops here.
- restore-to-time: one primary under a steady pgbench write load archives every WAL file with
  both tools (its ``archive_command`` is the relay of bench/walrelay.py running ``bcpctl wal
  push`` and then ``pgbackrest archive-push``, each synchronous); both take a full base backup,
  and both restore the same target time into a fresh cluster (base restore + replay until
  promoted): the RTO. Both fetch ahead of replay with three parallel fetchers and a 256 MiB
  queue (pgBackRest ``archive-async=y process-max=3 archive-get-queue-max=256MiB`` in its
  restore_command; bcpctl restore's feed, backup/walfeed.py: 3 workers, 16 segments).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.walarchives import WAIT_SECONDS, make_archives, timed
from bench.waldrain import build_backlog, drain_table, run_drains
from bench.walrelay import SYSTEM, WAL_FILE_NAME_LENGTH, Relay, Timing, relay_script


def _sql(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def _wait_archived(dsn: str, timeout: float = WAIT_SECONDS) -> None:
    """Switch to a new segment and wait until PostgreSQL reports the previous one archived."""
    (segment,) = _sql(dsn, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    _sql(dsn, "SELECT pg_switch_wal()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = _sql(dsn, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")[0][0]
        if last[:WAL_FILE_NAME_LENGTH] >= segment:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{segment} was not archived within {timeout:.0f} s")


def unlock_seconds(config: Path, rounds: int = 3) -> float:
    """What opening the repository costs each ``wal push`` (the key-file unlock), median of ``rounds``."""
    from backup.waljobs import wal_repository
    from dc.config import load_config

    consortium, _ = load_config(config)
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        with wal_repository(consortium, config.parent):
            times.append(time.monotonic() - started)
    return statistics.median(times)


def _startup_seconds(env: dict[str, str], rounds: int = 3) -> float:
    """A bcpctl process that does nothing (``--version``): the interpreter and imports."""
    return statistics.median(timed([sys.executable, "-m", "bcpctl.cli", "--version"], env) for _ in range(rounds))


def _summary(timing: Timing) -> dict[str, float]:
    n = len(timing.wall)
    return {
        "segments": n,
        "seconds_per_segment": round(statistics.mean(timing.wall), 4) if n else 0.0,
        "cpu_ms_per_segment": round(1000 * statistics.mean(timing.cpu), 1) if n else 0.0,
    }


def push_phase(scale: int, clients: int, backlog: int, rounds: int) -> dict[str, Any]:
    """The drains of bench/waldrain.py on one backlog of at least ``backlog`` segments."""
    work = Path(tempfile.mkdtemp(prefix="bcpctl-bench-drain-"))
    work.chmod(0o755)
    built = None
    try:
        built = build_backlog(work / "backlog", scale, clients, backlog)
        return run_drains(built, work, rounds, log=lambda one: print(json.dumps(one), file=sys.stderr, flush=True))
    finally:
        if built is not None:
            shutil.rmtree(built.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def restore_phase(scale: int, seconds: int, clients: int, *, pgbackrest_async_get: bool = True) -> dict[str, Any]:
    """Base backups, a steady load archived by both tools, and both restores to one target time."""
    from backup.archiving import archive_settings
    from backup.pgcluster import RestoredCluster
    from tests.servers.postgres import _bin, new_cluster

    base = Path(tempfile.mkdtemp(prefix="bcpctl-bench-wal-"))
    base.chmod(0o755)
    cluster = new_cluster(settings={"fsync": "on"})
    owner = cluster.owner
    relay = Relay({}, [], owner, [])
    script = relay_script(base / "bcpctl-and-pgbackrest", relay.port)  # pgBackRest wants its name in archive_command
    archives = make_archives(base, cluster.datadir, cluster.port, cluster.base, owner, script)
    env, pgbackrest, config = archives.env, archives.pgbackrest, archives.config
    relay.env, relay.pgbackrest = env, pgbackrest
    if pgbackrest_async_get:
        relay.get_options = ["--archive-async", f"--spool-path={base / 'pgbr-spool'}", "--process-max=3",
                             "--archive-get-queue-max=256MiB"]  # fmt: skip
    with (cluster.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(archive_settings(str(script)))
    cli = [sys.executable, "-m", "bcpctl.cli"]
    timed([*cli, "db", "upgrade", "--config", str(config)], env)
    threading.Thread(target=relay.serve, daemon=True).start()
    results: dict[str, Any] = {"pgbackrest_async_get": pgbackrest_async_get,
                               "loadavg_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    restored: list[RestoredCluster] = []
    try:
        cluster.start()
        dsn = cluster.dsn("postgres")
        timed([*pgbackrest, "stanza-create"], env)
        pgbench = [_bin("pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
        timed([*pgbench, "-i", "-q", "-s", str(scale), "postgres"], env)
        _wait_archived(dsn)
        results["base_backup_seconds"] = {
            "bcpctl": round(timed([*cli, "backup", "run", "--config", str(config)], env), 2),
            "pgbackrest": round(timed([*pgbackrest, "--type=full", "backup"], env), 2),
        }
        for timing in relay.pushes.values():  # what archiving the steady load cost each tool
            timing.wall.clear()
            timing.cpu.clear()
        load = subprocess.Popen(
            [*pgbench, "-c", str(clients), "-T", str(seconds), "-n", "postgres"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(seconds / 2)
        target = datetime.now(UTC)
        load.wait()
        _wait_archived(dsn)
        results["push_under_load"] = {name: _summary(t) for name, t in relay.pushes.items()}
        results["archive_failures"] = relay.failures[:5]
        text = target.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        results["target_time"] = target.isoformat()
        # bcpctl: its restore measures base restore + replay until promoted
        data_b = base / "restored-bcpctl"
        out = subprocess.run(
            [*cli, "restore", SYSTEM, "--config", str(config), "--to-time", target.isoformat(),
             "--target-dir", str(data_b), "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"bcpctl restore failed: {out.stderr.strip()}")
        got = json.loads(out.stdout)
        rto = {
            "bcpctl": {
                "restore_command_calls": len(relay.gets),
                "restore_command_misses": sum(1 for _, code, _ in relay.gets if code != 0),
                "restore_command_seconds": round(sum(wall for _, _, wall in relay.gets), 2),
                "seconds": got["rto_seconds"],
                "recovered_to": got["recovered_to"],
                "base_seconds": got["base_seconds"],
                "replay_seconds": got["replay_seconds"],
            }
        }
        # pgBackRest: restore, start, wait until recovery reached the target and promoted
        data_p = base / "restored-pgbackrest"
        started = time.monotonic()
        data_p.mkdir(mode=0o700)
        timed(
            [*pgbackrest, f"--pg1-path={data_p}", "--type=time", f"--target={text}", "--target-action=promote",
             f"--recovery-option=restore_command={script} pgbackrest-get %f %p",
             "--recovery-option=archive_mode=off", "restore"],
            env,
        )  # fmt: skip
        if owner:
            subprocess.run(["chown", "-R", f"{owner}:{owner}", str(data_p)], check=True)
        restored_p = RestoredCluster(data_p, _free_port(), owner)
        restored.append(restored_p)
        try:
            restored_p.start(WAIT_SECONDS)
        except Exception as exc:
            calls, failures = relay.pgbackrest_gets[-4:], relay.failures[-3:]
            lines = restored_p.log.read_text(errors="replace").splitlines() if restored_p.log.exists() else []
            # the relay's own complaints (a refused connection, no answer) and the server's tail
            log = [line for line in lines[:-8] if "relay" in line or "restore_command" in line][-6:] + lines[-8:]
            raise RuntimeError(
                f"pgBackRest's restore did not start ({exc}); its restore_command calls (file, code, s): {calls}; "
                f"failures: {failures}; server log: {log}"
            ) from exc
        conninfo = f"postgresql://postgres@127.0.0.1:{restored_p.port}/postgres"
        restored_p.wait_promoted(conninfo, WAIT_SECONDS)
        seconds_p = round(time.monotonic() - started, 3)
        (last,) = _sql(conninfo, "SELECT pg_last_xact_replay_timestamp()")[0]
        rto["pgbackrest"] = {"seconds": seconds_p, "recovered_to": last.isoformat() if last else None}
        results["restore_to_time"] = rto
        results["unlock_seconds"] = round(unlock_seconds(config), 5)
        results["bcpctl_startup_seconds"] = round(_startup_seconds(env), 3)
        results["loadavg_end"] = round(os.getloadavg()[0], 2)
    finally:
        for one in restored:
            one.stop()
        relay.close()
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    rto = results["restore_to_time"]
    results["pass"] = {"restore_to_time": rto["bcpctl"]["seconds"] <= rto["pgbackrest"]["seconds"]}
    return results


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"unknown x{os.cpu_count()}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table(results: dict[str, Any]) -> str:
    verdict = {True: "PASS", False: "FAIL"}
    lines = [f"archive push: {results['cpu']}", drain_table(results["push"])]
    ok = all(results["push"]["pass"].values())
    if "restore" in results:
        r = results["restore"]
        rto, bb = r["restore_to_time"], r["base_backup_seconds"]
        rows = [
            ("restore-to-time", "bcpctl", "pgBackRest", ""),
            ("base backup s", str(bb["bcpctl"]), str(bb["pgbackrest"]), ""),
            ("RTO s", str(rto["bcpctl"]["seconds"]), str(rto["pgbackrest"]["seconds"]),
             verdict[r["pass"]["restore_to_time"]]),
            ("recovered to", str(rto["bcpctl"]["recovered_to"]), str(rto["pgbackrest"]["recovered_to"]), ""),
        ]  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        b = rto["bcpctl"]
        lines.append(
            f"target {r['target_time']}; pgbench scale {results['scale']}, {results['clients']} clients, "
            f"{results['load_seconds']} s; bcpctl restore: base {b['base_seconds']} s + replay "
            f"{b['replay_seconds']} s; restore_command {b['restore_command_calls']} calls "
            f"({b['restore_command_misses']} misses), {b['restore_command_seconds']} s; load average "
            f"{r['loadavg_start']} -> {r['loadavg_end']}"
        )
        ok = ok and r["pass"]["restore_to_time"]
    what = "archive push and restore-to-time" if "restore" in results else "archive push"
    lines.append(f"{what} at least as fast as pgBackRest: " + verdict[ok])
    return "\n".join(lines)


def run(
    scale: int,
    seconds: int,
    clients: int,
    *,
    backlog: int = 48,
    rounds: int = 3,
    pgbackrest_async_get: bool = True,
    push_only: bool = False,
) -> dict[str, Any]:
    """Both phases (the module's docstring); ``push_only``: the archive push drains alone."""
    results: dict[str, Any] = {
        "scale": scale, "load_seconds": seconds, "clients": clients, "cpu": _cpu_model(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    results["push"] = push_phase(scale, clients, backlog, rounds)
    if not push_only:
        results["restore"] = restore_phase(scale, seconds, clients, pgbackrest_async_get=pgbackrest_async_get)
    results["pass"] = {"archive_push": all(results["push"]["pass"].values())} | (
        results["restore"]["pass"] if "restore" in results else {}
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale factor")
    parser.add_argument("--seconds", type=int, default=60, help="duration of the steady pgbench load (restore phase)")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients")
    parser.add_argument("--backlog", type=int, default=48, help="ready segments each tool drains (push phase)")
    parser.add_argument("--rounds", type=int, default=3, help="drains per tool and mode, tools taking turns")
    parser.add_argument(
        "--pgbackrest-sync-get",
        action="store_true",
        help="pgBackRest's restore_command without its asynchronous queue (its default), for comparison",
    )
    parser.add_argument("--push-only", action="store_true", help="stop after the archive push figures")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results = run(
        args.scale,
        args.seconds,
        args.clients,
        backlog=args.backlog,
        rounds=args.rounds,
        pgbackrest_async_get=not args.pgbackrest_sync_get,
        push_only=args.push_only,
    )
    print(table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(results["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
