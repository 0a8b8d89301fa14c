"""Archive throughput where the archiver is the bottleneck: each tool drains the same WAL backlog.

Under a steady pgbench load on this machine PostgreSQL fills only a few segments a minute, so a
push rate measured there is pgbench's, not the archiver's. Here one primary first builds a
backlog: pgbench's steady write load (``-M prepared``, scale as given) runs while archiving is
paused (``archive_mode = on``, ``archive_command = ''``: PostgreSQL keeps every finished segment
marked ready), until at least N 16 MiB segments wait; the WAL of ``pgbench -i`` is archived
away (``archive_command = true``) before the load starts, so the backlog is the load's WAL
alone. The stopped cluster is the template.

Each drain copies the template into a fresh cluster (``fsync = on``), gives one tool a fresh
encrypted archive (bench/walarchives.py), starts it and sets its ``archive_command``; the
clock runs from that moment until ``pg_stat_archiver`` reports the backlog's last segment
archived. The CPU is every process the tool ran in that window, detached ones included
(bench/walasync.py). Modes:

- ``sync``: one process per segment that stores it before it exits (``bcpctl wal push``;
  ``pgbackrest archive-push``, ``archive-async=n``, its default).
- ``async``: bcpctl's ``wal push-daemon`` (started at the window's start) with the
  ``archive_command`` ``wal push %p --spool DIR``; pgBackRest's ``archive-async`` with
  ``process-max=1`` (bcpctl's daemon also pushes one segment at a time).

The tools take turns (bcpctl first in even rounds, pgBackRest first in odd ones), so both see
the same load over the run; figures are medians over the rounds. Every drain is checked: the
archive must hold at least one object per backlog segment, and a drain in which a push failed
(this machine's disk is shared) is run once more, the failed one kept aside as ``discarded``.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.walarchives import Archives, make_archives, timed, tree_bytes
from bench.walasync import DescendantCpu, pgbackrest_async_push, start_push_daemon, stop_push_daemon
from bench.walrelay import SYSTEM, Relay, relay_script

TOOLS = ("bcpctl", "pgbackrest")
MODES = ("sync", "async")


@dataclass(frozen=True)
class Backlog:
    #: the stopped template cluster's base directory (its ``data`` inside)
    base: Path
    owner: str | None
    #: the segments PostgreSQL marked ready, oldest first
    segments: list[str]
    build_seconds: float


def _ready(datadir: Path) -> list[str]:
    status = datadir / "pg_wal" / "archive_status"
    return sorted(n.removesuffix(".ready") for n in os.listdir(status) if n.endswith(".ready") and len(n) == 30)


def _set_archive_command(dsn: str, command: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET archive_command = '{command.replace(chr(39), chr(39) * 2)}'")
        conn.execute("SELECT pg_reload_conf()")


def _last_archived(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").fetchone()
    return str(row[0]) if row else ""


def _wait_archived(dsn: str, segment: str, timeout: float, failures: list[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while _last_archived(conn)[:24] < segment:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{segment} not archived within {timeout:.0f} s: {(failures or [])[:3]}")
            time.sleep(0.05)


def build_backlog(base: Path, scale: int, clients: int, segments: int, timeout: float = 3600) -> Backlog:
    """A stopped cluster under ``base`` holding at least ``segments`` ready segments of pgbench's steady load."""
    from tests.servers.postgres import _bin, new_cluster

    started = time.monotonic()
    cluster = new_cluster(settings={"fsync": "off", "synchronous_commit": "off"})
    with (cluster.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("wal_level = replica\narchive_mode = on\narchive_command = ''\n")
    cluster.start()
    dsn = cluster.dsn("postgres")
    pgbench = [_bin("pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    timed([*pgbench, "-i", "-q", "-s", str(scale), "postgres"], dict(os.environ))
    _set_archive_command(dsn, "true")
    with psycopg.connect(dsn, autocommit=True) as conn:
        (init_last,) = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone() or ("",)
    _wait_archived(dsn, init_last, 600)
    _set_archive_command(dsn, "")
    load = subprocess.Popen(
        [*pgbench, "-c", str(clients), "-T", str(int(timeout)), "-n", "-M", "prepared", "postgres"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while len(_ready(cluster.datadir)) < segments:
            if load.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbench stopped with {len(_ready(cluster.datadir))} of {segments} segments")
            time.sleep(1)
    finally:
        load.terminate()
        load.wait()
    subprocess.run(shlex.split(cluster.stop_command()), check=True, stdout=subprocess.DEVNULL)
    ready = _ready(cluster.datadir)
    return Backlog(cluster.base, cluster.owner, ready, round(time.monotonic() - started, 1))


def _copy(backlog: Backlog, into: Path) -> None:
    into.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", str(backlog.base / "data"), str(into / "data")], check=True)
    if backlog.owner:
        pw = pwd.getpwnam(backlog.owner)
        os.chown(into, pw.pw_uid, pw.pw_gid)


def _stored(archives: Archives, tool: str) -> tuple[int, int]:
    """(objects, bytes) the tool's archive holds."""
    root = archives.repo / "wal" / SYSTEM if tool == "bcpctl" else archives.pgbr_repo / "archive"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    if tool == "pgbackrest":
        files = [p for p in files if len(p.name) > 24 and p.name[:24].isalnum() and "-" in p.name]
    return len(files), tree_bytes(root) if root.exists() else 0


def drain(backlog: Backlog, tool: str, mode: str, base: Path) -> dict[str, Any]:
    """One tool drains a fresh copy of ``backlog`` in ``mode``; its wall time, CPU and what it stored."""
    from tests.servers.ports import free_port
    from tests.servers.postgres import Cluster

    base.mkdir(mode=0o755)
    _copy(backlog, base / "cluster")
    cluster = Cluster(base / "cluster", free_port(), {"fsync": "on"}, backlog.owner)
    relay = Relay({}, [], backlog.owner, [])
    script = relay_script(base / "bcpctl-and-pgbackrest", relay.port)
    archives = make_archives(base / "tool", cluster.datadir, cluster.port, cluster.base, backlog.owner, script)
    relay.env, relay.pgbackrest = archives.env, archives.pgbackrest
    spool = archives.base / "spool"
    if mode == "async":
        relay.push_options = ["--spool", str(spool)]
        relay.pgbr_push_options = pgbackrest_async_push(spool)
    threading.Thread(target=relay.serve, daemon=True).start()
    daemon = None
    try:
        cluster.start()
        if tool == "pgbackrest":
            timed([*archives.pgbackrest, "stanza-create"], archives.env)
        load = os.getloadavg()[0]
        with DescendantCpu() as cpu:
            started = time.monotonic()
            if tool == "bcpctl" and mode == "async":
                daemon = start_push_daemon(archives.env, SYSTEM, cluster.datadir, spool)
            _set_archive_command(cluster.dsn(), f"{script} push-{tool} %p")
            _wait_archived(cluster.dsn(), backlog.segments[-1], 120 + 30 * len(backlog.segments), relay.failures)
            seconds = time.monotonic() - started
            if daemon is not None:
                stop_push_daemon(daemon)
                daemon = None
            cpu_seconds = cpu.finish(str(archives.pgbr_conf).encode())
    finally:
        if daemon is not None:
            stop_push_daemon(daemon)
        relay.close()
        cluster.remove()
    objects, stored = _stored(archives, tool)
    shutil.rmtree(base, ignore_errors=True)
    n = len(backlog.segments)
    if objects < n:
        raise RuntimeError(f"{tool} {mode}: {objects} objects archived for {n} segments")
    return {
        "tool": tool, "mode": mode, "segments": n, "seconds": round(seconds, 2),
        "segments_per_second": round(n / seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        "cpu_ms_per_segment": round(1000 * cpu_seconds / n, 1), "stored_mib": round(stored / 2**20, 1),
        "failures": relay.failures[:3], "loadavg": round(load, 2),
    }  # fmt: skip


def run_drains(backlog: Backlog, work: Path, rounds: int, log: Any = None) -> dict[str, Any]:
    """``rounds`` of drains, each tool in each mode once per round, taking turns; medians."""
    runs, discarded = [], []
    for r in range(rounds):
        order = TOOLS if r % 2 == 0 else TOOLS[::-1]
        for mode in MODES:
            for tool in order:
                for attempt in range(2):
                    one = drain(backlog, tool, mode, work / f"drain-{r}-{mode}-{tool}-{attempt}")
                    if log:
                        log(one)
                    if not one["failures"] or attempt:
                        break
                    # a failed push (the shared disk full a moment) times PostgreSQL's retry, not the tool
                    discarded.append(one)
                runs.append(one)
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for mode in MODES:
        for tool in TOOLS:
            mine = [x for x in runs if x["tool"] == tool and x["mode"] == mode]
            medians.setdefault(mode, {})[tool] = {
                key: round(statistics.median(x[key] for x in mine), 2)
                for key in ("segments_per_second", "cpu_ms_per_segment", "seconds", "stored_mib")
            }
    return {
        "segments": len(backlog.segments), "backlog_build_seconds": backlog.build_seconds, "rounds": rounds,
        "runs": runs, "discarded": discarded, "median": medians,
        "pass": {mode: medians[mode]["bcpctl"]["segments_per_second"]
                 >= medians[mode]["pgbackrest"]["segments_per_second"] for mode in MODES},
    }  # fmt: skip


def drain_table(drains: dict[str, Any]) -> str:
    med = drains["median"]
    verdict = {True: "PASS", False: "FAIL"}
    rows = [("", "bcpctl", "pgBackRest", "")]
    for mode in MODES:
        b, p = med[mode]["bcpctl"], med[mode]["pgbackrest"]
        rows += [
            (f"{mode} segments/s", str(b["segments_per_second"]), str(p["segments_per_second"]),
             verdict[drains["pass"][mode]]),
            (f"{mode} CPU ms/segment", str(b["cpu_ms_per_segment"]), str(p["cpu_ms_per_segment"]), ""),
            (f"{mode} drain s", str(b["seconds"]), str(p["seconds"]), ""),
        ]  # fmt: skip
    rows.append(
        ("stored MiB", str(med["sync"]["bcpctl"]["stored_mib"]), str(med["sync"]["pgbackrest"]["stored_mib"]), "")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    loads = [x["loadavg"] for x in drains["runs"]]
    lines.append(
        f"drain of {drains['segments']} ready 16 MiB segments of pgbench WAL, medians of {drains['rounds']} "
        f"alternating rounds; load average {min(loads)}-{max(loads)}"
    )
    return "\n".join(lines)
