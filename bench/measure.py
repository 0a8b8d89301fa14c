"""Wall time, CPU time and peak memory of one command and every process it starts.

Peak RSS is the larger of two measures: the maximum over time of the *sum* of the resident
sets of the whole process tree, sampled from /proc every few milliseconds (a tool that forks
workers is charged for all of them at once), and the kernel's ``ru_maxrss`` from ``wait4``
(exact, but only the largest single process, like ``/usr/bin/time -v``). Sampling can miss a
spike shorter than the interval; ``ru_maxrss`` cannot, so together they bound the peak well.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measurement:
    argv: list[str]
    returncode: int
    seconds: float
    #: user + system CPU seconds of the whole tree (children reaped by their parents included)
    cpu_seconds: float
    #: bytes; max(sampled tree sum, largest single process)
    peak_rss: int
    peak_rss_tree_sampled: int
    peak_rss_single: int
    samples: int
    stdout: str
    stderr: str
    loadavg_before: float


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def tree_rss(root: int) -> int:
    """Summed resident set of ``root`` and all its descendants, in bytes (0 once it is gone)."""
    total = 0
    stack = [root]
    seen = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
        stack += _children(pid)
    return total


def measure(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, interval: float = 0.01
) -> Measurement:
    """Run ``argv`` to completion and measure it; output goes to files, never a pipe that could fill."""
    load = os.getloadavg()[0]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-measure-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = 0
        samples = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, samples
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                samples += 1
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 rather than proc.wait(): it returns the rusage of this child and its reaped descendants
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    single = usage.ru_maxrss * 1024  # Linux reports KiB
    return Measurement(
        argv=[str(a) for a in argv],
        returncode=proc.returncode,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=max(peak, single),
        peak_rss_tree_sampled=peak,
        peak_rss_single=single,
        samples=samples,
        stdout=stdout,
        stderr=stderr,
        loadavg_before=load,
    )


def method_note() -> str:
    """How peak RSS was measured on this machine, for the report."""
    me = os.getpid()
    children_file = Path(f"/proc/{me}/task/{me}/children").exists()
    return "peak RSS = max(process-tree RSS sum sampled every 10 ms, wait4 ru_maxrss)" + (
        "" if children_file else "; /proc/PID/task/TID/children is missing here, so the sum covers the root only"
    )
