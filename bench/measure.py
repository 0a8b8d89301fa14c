"""Wall time, CPU time and peak memory of one command and every process it starts.

Peak RSS is the larger of two measures, both read from /proc every 10 ms while the command
runs: the *sum* of the resident sets of the whole process tree (a tool that forks workers is
charged for all of them at once), and the largest per-process high-water mark ``VmHWM``
(exact for a single process, even for a spike between two samples).

``ru_maxrss`` from ``wait4`` (what ``/usr/bin/time -v`` prints) is deliberately not used: at
``exec`` the kernel folds the *forking* process's high-water mark into the child's
``maxrss``, so a child of this benchmark — which holds hundreds of MB while it mutates
the dataset — would be charged with the benchmark's own memory.
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
    #: bytes; max(sampled tree sum, largest per-process high-water mark)
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


def _memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in bytes; zeros once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def tree_memory(root: int) -> tuple[int, int]:
    """(summed VmRSS, largest VmHWM) over ``root`` and all its descendants, in bytes."""
    total = largest = 0
    stack = [root]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        rss, hwm = _memory(pid)
        total += rss
        largest = max(largest, hwm)
        stack += _children(pid)
    return total, largest


def measure(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, interval: float = 0.01
) -> Measurement:
    """Run ``argv`` to completion and measure it; output goes to files, never a pipe that could fill."""
    load = os.getloadavg()[0]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-measure-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = single = 0
        samples = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, single, samples
            while not done.is_set():
                total, largest = tree_memory(proc.pid)
                peak, single = max(peak, total), max(single, largest)
                samples += 1
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 rather than proc.wait(): the CPU time of this child and its reaped descendants
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
    return "peak RSS = max(process-tree VmRSS sum, largest per-process VmHWM), read from /proc every 10 ms" + (
        "" if children_file else "; /proc/PID/task/TID/children is missing here, so the sum covers the root only"
    )
