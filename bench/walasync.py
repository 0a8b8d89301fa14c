"""Asynchronous archive push in the drain (bench/waldrain.py): bcpctl's ``wal push-daemon`` beside
pgBackRest's ``archive-async``, and the exact CPU of every process either tool starts.

pgBackRest's front (``archive-push`` as ``archive_command``) forks an ``archive-push:async``
process and detaches it, so it is no child anything waits for and its CPU escapes ``wait4``.
:class:`DescendantCpu` makes this process a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``)
for the measured window: every process orphaned beneath it — the detached async process and,
through it, its ``archive-push:local`` workers — is re-parented here, reaped here, and its CPU
lands in this process's ``RUSAGE_CHILDREN``. The window's CPU is the growth of that figure,
so the fronts, bcpctl's daemon (started inside the window: its start-up is counted, as
pgBackRest's async start-up is) and the detached processes are all counted, nothing twice and
nothing missed between two samples.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

_PR_SET_CHILD_SUBREAPER = 36


def pgbackrest_async_push(spool: Path) -> list[str]:
    """pgBackRest's archive-push options with its asynchronous process and spool (one worker, as
    bcpctl's daemon pushes one segment at a time)."""
    return ["--archive-async", f"--spool-path={spool}", "--process-max=1"]


def start_push_daemon(env: dict[str, str], system: str, pg_data: Path, spool: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "wal", "push-daemon", "--system", system,
         "--pg-data", str(pg_data), "--spool", str(spool)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_push_daemon(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the daemon finishes its segment in flight and exits (reaped, so its CPU is counted)."""
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _alive_with(marker: bytes) -> list[int]:
    """Live processes whose command line holds ``marker`` (a zombie's command line is empty)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


class DescendantCpu:
    """``with DescendantCpu() as cpu: …; seconds = cpu.finish(marker)``: the CPU seconds of every
    process started (directly or detached) within the block. Nothing else of this process may
    start or reap children meanwhile (the benchmark's relay only runs the measured tool)."""

    def __enter__(self) -> DescendantCpu:
        _set_subreaper(True)
        self._start = _children_cpu()
        return self

    def finish(self, marker: bytes, timeout: float = 120) -> float:
        """Wait until no live process names ``marker`` (the tool's own configuration path), reap
        every exited orphan, and return the window's CPU seconds."""
        deadline = time.monotonic() + timeout
        while _alive_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        return _children_cpu() - self._start

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        _set_subreaper(False)
