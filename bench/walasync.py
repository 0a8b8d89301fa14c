"""Asynchronous archive push for ``bench/wal.py --push-daemon``: bcpctl's push-daemon beside
pgBackRest's ``archive-async``, each with its spool, the CPU of their background processes counted.

A front push (PostgreSQL's ``archive_command``) is timed with its own rusage by the relay, as in
the synchronous comparison. The background work is not in those figures, so it is added here:

- bcpctl: the ``wal push-daemon`` this bench starts; its CPU from ``/proc/<pid>/stat`` at the
  start and the end of the steady load.
- pgBackRest: the ``archive-push:async`` processes its fronts fork and detach (they are no
  child of anything the bench waits for) and their ``archive-push:local`` workers, found by a
  scan of ``/proc`` every 20 ms and counted at the highest CPU seen per process (each its own,
  so nothing twice). The CPU a process spends after its last sample is missed: the scan
  undercounts pgBackRest, never bcpctl.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def pgbackrest_async_push(base: Path) -> list[str]:
    """pgBackRest's archive-push options with its asynchronous process and spool (one worker, as
    bcpctl's daemon pushes one segment at a time)."""
    return ["--archive-async", f"--spool-path={base / 'pgbr-push-spool'}", "--process-max=1"]


def _cpu(pid: int) -> float | None:
    """CPU seconds of ``pid`` itself, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class BackgroundCpu:
    """bcpctl's push-daemon, started here, and the CPU of both tools' background pushers."""

    def __init__(self, env: dict[str, str], system: str, pg_data: Path, spool: Path, pgbr_conf: Path) -> None:
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "bcpctl.cli", "wal", "push-daemon", "--system", system,
             "--pg-data", str(pg_data), "--spool", str(spool)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._marker = str(pgbr_conf).encode()
        self._pgbr: dict[int, float] = {}
        self._stopped = threading.Event()
        self._daemon_start = 0.0
        self._pgbr_start = 0.0
        threading.Thread(target=self._scan, daemon=True).start()

    def _scan(self) -> None:
        while not self._stopped.wait(0.02):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if (b"archive-push:async" in cmdline or b"archive-push:local" in cmdline) and self._marker in cmdline:
                    cpu = _cpu(int(entry))
                    if cpu is not None:
                        self._pgbr[int(entry)] = max(cpu, self._pgbr.get(int(entry), 0.0))

    def _daemon_cpu(self) -> float:
        return _cpu(self.daemon.pid) or 0.0

    def mark(self) -> None:
        """The start of the measured window."""
        self._daemon_start = self._daemon_cpu()
        self._pgbr_start = sum(self._pgbr.values())

    def add_to(self, push: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """``push`` (the fronts' figures) with each tool's background CPU spread over its segments."""
        time.sleep(0.5)  # pgBackRest's async process outlives the front by a moment
        background = {
            "bcpctl": self._daemon_cpu() - self._daemon_start,
            "pgbackrest": sum(self._pgbr.values()) - self._pgbr_start,
        }
        out = {}
        for tool, figures in push.items():
            n = figures["segments"] or 1
            front = figures["cpu_ms_per_segment"]
            out[tool] = figures | {
                "front_cpu_ms_per_segment": front,
                "background_cpu_ms_per_segment": round(1000 * background[tool] / n, 1),
                "cpu_ms_per_segment": round(front + 1000 * background[tool] / n, 1),
            }
        return out

    def stop(self) -> None:
        self._stopped.set()
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()


def push_table(results: dict[str, Any]) -> str:
    push = results["push"]
    lines = [f"{'':22}{'bcpctl':>14}{'pgBackRest':>14}"]
    for label, key in (
        ("segments pushed", "segments"),
        ("segments/s (front)", "segments_per_second"),
        ("front CPU ms/segment", "front_cpu_ms_per_segment"),
        ("async CPU ms/segment", "background_cpu_ms_per_segment"),
        ("total CPU ms/segment", "cpu_ms_per_segment"),
    ):
        lines.append(f"{label:22}{push['bcpctl'].get(key, '-')!s:>14}{push['pgbackrest'].get(key, '-')!s:>14}")
    lines.append(
        f"push-daemon vs archive-async; pgbench scale {results['scale']}, {results['clients']} clients, "
        f"{results['load_seconds']} s; load average {results['loadavg_start']} -> {results['loadavg_end']}; "
        f"{results['cpu']}; failures {results['archive_failures']}"
    )
    return "\n".join(lines)
