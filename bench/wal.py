"""PostgreSQL continuous archiving: bcpctl against pgBackRest on the same primary (``python -m bench.wal``).

One primary under a steady pgbench write load archives every WAL file twice: its
``archive_command`` is a relay that runs ``bcpctl wal push`` and then ``pgbackrest
archive-push`` (each in its own process, as PostgreSQL runs an archive_command), timing each
with its own rusage, so both tools push the very same segments under the very same load.
pgBackRest keeps its own repository on local disk, encrypted (``repo1-cipher-type=aes-256-cbc``),
at its defaults otherwise (gz). bcpctl's repository is made with the production Argon2id
passphrase slot and a key-file slot; the database host's configuration names the key file, as
docs/deployment.md sets up a database host, so ``wal push``/``wal get`` unlock with HKDF
(backup/keyfile.py) while base backup and restore use the passphrase.

Same parallelism and asynchrony for both, where both offer it:

- archive push: synchronous, one process per segment that stores it before it exits
  (pgBackRest ``archive-async=n``, its default; bcpctl without ``--ahead``), so each tool's
  timing and CPU are the whole cost of its segment.
  ``--push-daemon``: both asynchronous instead (bcpctl ``wal push-daemon``, pgBackRest
  ``archive-async``), each with its spool, their background processes' CPU counted
  (bench/walasync.py); ``--push-only`` stops after the push figures.
- restore-to-time: three parallel fetchers ahead of replay and a 256 MiB queue for both
  (pgBackRest ``archive-async=y process-max=3 archive-get-queue-max=256MiB`` in its
  restore_command; bcpctl restore's feed, backup/walfeed.py: 3 workers, 16 segments).

Then both take a full base backup, and both restore the same target time into a fresh
cluster (base restore + replay until promoted): the RTO.

PostgreSQL runs as ``postgres`` (initdb refuses root) while this Python is root's, so the
server's commands hand their arguments over loopback to the relay in this process (the same
arrangement as ``tests/backup/walsite.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.walasync import BackgroundCpu, pgbackrest_async_push, push_table

SYSTEM = "bench-juki"
STANZA = "bench"
WAL_FILE_NAME_LENGTH = 24


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Relay:
    """Runs each tool's WAL command for the server as root and keeps its wall and CPU time per segment."""

    env: dict[str, str]
    pgbackrest: list[str]
    owner: str | None
    #: how bcpctl's archive_command is configured
    push_options: list[str]
    #: pgBackRest's archive-get options in its restore_command (its asynchronous queue)
    get_options: list[str] = field(default_factory=list)
    #: pgBackRest's archive-push options in its archive_command (``archive-async`` beside bcpctl's push-daemon)
    pgbr_push_options: list[str] = field(default_factory=list)
    server: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    pushes: dict[str, Timing] = field(default_factory=lambda: {"bcpctl": Timing(), "pgbackrest": Timing()})
    failures: list[str] = field(default_factory=list)
    #: bcpctl restore's restore_command calls: (file, exit code, seconds)
    gets: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def serve(self) -> None:
        from tests.servers.ports import serve_each

        serve_each(self.server, self._one)

    def _run(self, argv: list[str], cwd: str) -> tuple[int, float, float]:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.returncode != 0:
            self.failures.append(f"{argv[0:4]}: {err.splitlines()[-1] if err else proc.returncode}")
        return proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime

    def _one(self, conn: socket.socket) -> None:
        with conn:
            line = conn.makefile("rb").readline().decode().rstrip("\n")
            tool, cwd, *args = line.split("\t")
            code = self.handle(tool, cwd, args)
            conn.sendall(f"{code}\n".encode())

    def handle(self, tool: str, cwd: str, args: list[str]) -> int:
        bcpctl = [sys.executable, "-m", "bcpctl.cli", "wal"]
        if tool == "push":  # archive_command: both tools, the segment counted for each
            path = args[0]
            segment = len(Path(path).name) == WAL_FILE_NAME_LENGTH
            for name, argv in (
                ("bcpctl", [*bcpctl, "push", path, "--system", SYSTEM, *self.push_options]),
                ("pgbackrest", [*self.pgbackrest, *self.pgbr_push_options, "archive-push", str(Path(cwd) / path)]),
            ):
                code, wall, cpu = self._run(argv, cwd)
                if code != 0:
                    return 1
                if segment:
                    self.pushes[name].wall.append(wall)
                    self.pushes[name].cpu.append(cpu)
            return 0
        if tool == "bcpctl":  # bcpctl restore's restore_command: "<relay> bcpctl get %f %p --system …"
            code, wall, _ = self._run([*bcpctl, *args], cwd)
            self.gets.append((args[1], code, wall))
            target = Path(cwd) / args[2]
        elif tool == "pgbackrest-get":
            target = Path(cwd) / args[1]
            code = self._run([*self.pgbackrest, *self.get_options, "archive-get", args[0], str(target)], cwd)[0]
        else:
            return 2
        if code == 0 and self.owner and target.exists():
            pw = pwd.getpwnam(self.owner)
            os.chown(target, pw.pw_uid, pw.pw_gid)
        return code

    def close(self) -> None:
        self.server.close()


def relay_script(path: Path, port: int) -> Path:
    """``<script> TOOL ARGS…``: TOOL, the server's directory and ARGS to the relay; its answer is the exit code."""
    path.write_text(
        "#!/bin/bash\n"
        f"exec 3<>/dev/tcp/127.0.0.1/{port} || exit 99\n"
        'tool="$1"; shift\n'
        "IFS=$'\\t'\n"
        'printf "%s\\t%s\\t%s\\n" "$tool" "$PWD" "$*" >&3\n'
        "read -r code <&3 || exit 98\n"
        'exit "$code"\n'
    )
    path.chmod(0o755)
    return path


def _sql(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def _wait_archived(dsn: str, timeout: float = 600) -> None:
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


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return time.monotonic() - started


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
    return statistics.median(_timed([sys.executable, "-m", "bcpctl.cli", "--version"], env) for _ in range(rounds))


def _summary(timing: Timing) -> dict[str, float]:
    n = len(timing.wall)
    return {
        "segments": n,
        "seconds_per_segment": round(statistics.mean(timing.wall), 4) if n else 0.0,
        "segments_per_second": round(n / sum(timing.wall), 2) if n else 0.0,
        "cpu_ms_per_segment": round(1000 * statistics.mean(timing.cpu), 1) if n else 0.0,
    }


def run(
    scale: int,
    seconds: int,
    clients: int,
    *,
    pgbackrest_async_get: bool = True,
    push_daemon: bool = False,
    push_only: bool = False,
) -> dict[str, Any]:
    """The comparison; ``push_daemon``: bcpctl's push-daemon against pgBackRest's archive-async
    (bench/walasync.py); ``push_only``: stop after the archive push figures."""
    from backup.archiving import archive_settings
    from backup.keyfile import add_key_file
    from backup.opening import init_repository, open_repository
    from backup.pgcluster import RestoredCluster
    from storage.local import LocalBackend
    from tests.servers.postgres import _bin, new_cluster

    base = Path(tempfile.mkdtemp(prefix="bcpctl-bench-wal-"))
    base.chmod(0o755)
    password = secrets.token_urlsafe(24)
    repo = base / "repo"
    init_repository(LocalBackend(repo, create=True), password)  # production KDF for the passphrase
    with open_repository(LocalBackend(repo), password, sync=False) as unlocked:
        add_key_file(unlocked, base / "db-host.key")  # the database host's wal push/get key
    (base / "password").write_text(password)
    (base / "password").chmod(0o600)
    cluster = new_cluster(settings={"fsync": "on"})
    owner = cluster.owner
    pgbr_conf = base / "pgbackrest.conf"
    pgbr_conf.write_text(
        "[global]\n"
        f"repo1-path={base / 'pgbr'}\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={secrets.token_urlsafe(24)}\n"
        f"lock-path={base / 'pgbr-lock'}\nlog-path={base / 'pgbr-log'}\nlog-level-console=warn\n"
        "log-level-file=off\nrepo1-retention-full=2\nstart-fast=y\n"
        f"[{STANZA}]\npg1-path={cluster.datadir}\npg1-port={cluster.port}\npg1-socket-path={cluster.base}\n"
        "pg1-user=postgres\n"
    )
    pgbackrest = ["pgbackrest", f"--config={pgbr_conf}", f"--stanza={STANZA}"]
    env = {k: v for k, v in os.environ.items() if k != "BCPCTL_PASSWORD"}
    get_async = ["--archive-async", f"--spool-path={base / 'pgbr-spool'}", "--process-max=3",
                 "--archive-get-queue-max=256MiB"]  # fmt: skip
    relay = Relay(env, pgbackrest, owner, [], get_async if pgbackrest_async_get else [])
    if push_daemon:
        relay.push_options = ["--spool", str(base / "bcpctl-spool")]
        relay.pgbr_push_options = pgbackrest_async_push(base)
    script = relay_script(base / "bcpctl-and-pgbackrest", relay.port)  # pgBackRest wants its name in archive_command
    with (cluster.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(archive_settings(str(script)))
    config = base / "bcpctl.yaml"
    source = {"kind": "postgres-wal", "dsn": cluster.dsn("postgres"), "wal_command": f"{script} bcpctl"}
    config.write_text(
        yaml.safe_dump(
            {
                "consortium": "bench",
                "control_db": f"sqlite:///{base / 'control.db'}",
                "sites": {"primary": {"prefecture": "茨城県", "repository": str(repo)}},
                "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
                "systems": {
                    SYSTEM: {
                        "tenant": "goka", "business": "住民基本台帳", "tier": 1, "rpo": "1m", "rto": "1h",
                        "source": source | ({"run_as": owner} if owner else {}),
                        "smoke": "SELECT count(*) FROM pgbench_accounts",
                    }
                },
                "secrets": {"password_file": str(base / "password"), "key_file": str(base / "db-host.key")},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )  # fmt: skip
    env["BCPCTL_CONFIG"] = str(config)
    cli = [sys.executable, "-m", "bcpctl.cli"]
    _timed([*cli, "db", "upgrade", "--config", str(config)], env)
    threading.Thread(target=relay.serve, daemon=True).start()
    results: dict[str, Any] = {
        "scale": scale, "load_seconds": seconds, "clients": clients, "cpu": _cpu_model(),
        "pgbackrest_async_get": pgbackrest_async_get,
        "loadavg_start": round(os.getloadavg()[0], 2), "push_daemon": push_daemon,
    }  # fmt: skip
    restored: list[RestoredCluster] = []
    background: BackgroundCpu | None = None
    try:
        cluster.start()
        dsn = cluster.dsn("postgres")
        _timed([*pgbackrest, "stanza-create"], env)
        pgbench = [_bin("pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
        _timed([*pgbench, "-i", "-q", "-s", str(scale), "postgres"], env)
        if push_daemon:
            background = BackgroundCpu(env, SYSTEM, cluster.datadir, base / "bcpctl-spool", pgbr_conf)
        _wait_archived(dsn)
        if not push_only:
            results["base_backup_seconds"] = {
                "bcpctl": round(_timed([*cli, "backup", "run", "--config", str(config)], env), 2),
                "pgbackrest": round(_timed([*pgbackrest, "--type=full", "backup"], env), 2),
            }
        for timing in relay.pushes.values():  # the push figures are those under the steady load
            timing.wall.clear()
            timing.cpu.clear()
        if background:
            background.mark()
        load = subprocess.Popen(
            [*pgbench, "-c", str(clients), "-T", str(seconds), "-n", "postgres"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(seconds / 2)
        target = datetime.now(UTC)
        load.wait()
        _wait_archived(dsn)
        results["push"] = {name: _summary(t) for name, t in relay.pushes.items()}
        results["archive_failures"] = relay.failures[:5]
        if background:
            results["push"] = background.add_to(results["push"])
        if push_only:
            results["loadavg_end"] = round(os.getloadavg()[0], 2)
            push = results["push"]
            results["pass"] = {
                "archive_push": push["bcpctl"]["segments_per_second"] >= push["pgbackrest"]["segments_per_second"]
            }
            return results
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
        _timed(
            [*pgbackrest, f"--pg1-path={data_p}", "--type=time", f"--target={text}", "--target-action=promote",
             f"--recovery-option=restore_command={script} pgbackrest-get %f %p",
             "--recovery-option=archive_mode=off", "restore"],
            env,
        )  # fmt: skip
        if owner:
            subprocess.run(["chown", "-R", f"{owner}:{owner}", str(data_p)], check=True)
        restored_p = RestoredCluster(data_p, _free_port(), owner)
        restored.append(restored_p)
        restored_p.start(600)
        conninfo = f"postgresql://postgres@127.0.0.1:{restored_p.port}/postgres"
        restored_p.wait_promoted(conninfo, 600)
        seconds_p = round(time.monotonic() - started, 3)
        (last,) = _sql(conninfo, "SELECT pg_last_xact_replay_timestamp()")[0]
        rto["pgbackrest"] = {"seconds": seconds_p, "recovered_to": last.isoformat() if last else None}
        results["restore_to_time"] = rto
        results["unlock_seconds"] = round(unlock_seconds(config), 5)
        results["bcpctl_startup_seconds"] = round(_startup_seconds(env), 3)
        results["loadavg_end"] = round(os.getloadavg()[0], 2)
    finally:
        if background:
            background.stop()
        for one in restored:
            one.stop()
        relay.close()
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    push, rto = results["push"], results["restore_to_time"]
    results["pass"] = {
        "archive_push": push["bcpctl"]["segments_per_second"] >= push["pgbackrest"]["segments_per_second"],
        "restore_to_time": rto["bcpctl"]["seconds"] <= rto["pgbackrest"]["seconds"],
    }
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
    push, rto, bb = results["push"], results["restore_to_time"], results["base_backup_seconds"]
    ok = results["pass"]
    verdict = {True: "PASS", False: "FAIL"}
    rows = [
        ("", "bcpctl", "pgBackRest", ""),
        ("segments pushed", str(push["bcpctl"]["segments"]), str(push["pgbackrest"]["segments"]), ""),
        ("segments/s pushed", str(push["bcpctl"]["segments_per_second"]),
         str(push["pgbackrest"]["segments_per_second"]), verdict[ok["archive_push"]]),
        ("CPU ms/segment", str(push["bcpctl"]["cpu_ms_per_segment"]),
         str(push["pgbackrest"]["cpu_ms_per_segment"]), ""),
        ("base backup s", str(bb["bcpctl"]), str(bb["pgbackrest"]), ""),
        ("restore-to-time RTO s", str(rto["bcpctl"]["seconds"]), str(rto["pgbackrest"]["seconds"]),
         verdict[ok["restore_to_time"]]),
        ("recovered to", str(rto["bcpctl"]["recovered_to"]), str(rto["pgbackrest"]["recovered_to"]), ""),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(
        f"target {results['target_time']}; pgbench scale {results['scale']}, {results['clients']} clients, "
        f"{results['load_seconds']} s; bcpctl per push: unlock {results['unlock_seconds']} s, "
        f"process start {results['bcpctl_startup_seconds']} s"
    )
    b = rto["bcpctl"]
    lines.append(
        f"bcpctl restore: base {b['base_seconds']} s + replay {b['replay_seconds']} s; restore_command "
        f"{b['restore_command_calls']} calls ({b['restore_command_misses']} misses), {b['restore_command_seconds']} s; "
        f"load average {results['loadavg_start']} -> {results['loadavg_end']}; {results['cpu']}"
    )
    lines.append(
        "archive push and restore-to-time at least as fast as pgBackRest: "
        + verdict[ok["archive_push"] and ok["restore_to_time"]]
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale factor")
    parser.add_argument("--seconds", type=int, default=60, help="duration of the steady pgbench load")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients")
    parser.add_argument(
        "--pgbackrest-sync-get",
        action="store_true",
        help="pgBackRest's restore_command without its asynchronous queue (its default), for comparison",
    )
    parser.add_argument(
        "--push-daemon",
        action="store_true",
        help="bcpctl's wal push-daemon against pgBackRest's archive-async, background CPU counted",
    )
    parser.add_argument("--push-only", action="store_true", help="stop after the archive push figures")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results = run(
        args.scale,
        args.seconds,
        args.clients,
        pgbackrest_async_get=not args.pgbackrest_sync_get,
        push_daemon=args.push_daemon,
        push_only=args.push_only,
    )
    print(push_table(results) if args.push_only else table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(results["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
