"""Wall time, CPU time and peak memory of one command and every process it starts.

Peak memory is the larger of two measures, both read from /proc every 10 ms while the
command runs: the *sum* over the whole process tree (a tool that forks workers is charged for
all of them at once), and the largest per-process high-water mark ``VmHWM`` (exact for a
single process, even for a spike between two samples). The tree sum counts each process's
proportional set size (``Pss`` in ``smaps_rollup``) when the tree has more than one process:
forked workers share the parent's pages copy-on-write, and summing their ``VmRSS`` would
charge every shared page once per process — memory that exists once. The plain ``VmRSS`` sum
is recorded beside it.

Reading ``smaps_rollup`` walks the page tables of every mapping, so sampling PSS as often as
VmRSS would take CPU from a multi-process tool that a single-process tool never pays
(docs/performance.md). The cheap ``status`` read (VmRSS, VmHWM) is every 10 ms; the PSS sum
every 250 ms — a tree's summed working set is a plateau, not a spike.
The sampler's own CPU time is recorded so a reader can see what measuring cost.

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
    #: the tree's summed VmRSS (shared pages counted once per process); for reference only
    peak_rss_tree_naive: int
    samples: int
    #: CPU seconds the sampling thread itself used (it shares the machine with the tool)
    sampler_cpu_seconds: float
    stdout: str
    stderr: str
    loadavg_before: float
    #: CPU seconds the hypervisor gave to other guests while the command ran (all CPUs together)
    steal_seconds: float = 0.0


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


def _pss(pid: int) -> int:
    """Proportional set size in bytes (shared pages divided among their sharers); 0 once gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


PSS_INTERVAL = 0.25


def tree_memory(root: int, *, pss: bool = True) -> tuple[int, int, int]:
    """(tree sum, largest VmHWM, summed VmRSS) over ``root`` and descendants.

    The tree sum is of PSS when there are several processes and ``pss`` is set; without
    ``pss`` a multi-process tree's sum is 0 (not measured this time).
    """
    rss_total = largest = 0
    pids: list[int] = []
    stack = [root]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        rss, hwm = _memory(pid)
        if rss:
            pids.append(pid)
        rss_total += rss
        largest = max(largest, hwm)
        stack += _children(pid)
    if len(pids) <= 1:
        return rss_total, largest, rss_total
    return (sum(_pss(pid) for pid in pids) if pss else 0), largest, rss_total


_TICKS = os.sysconf("SC_CLK_TCK")


def steal_seconds() -> float:
    """The machine's stolen CPU time so far (``/proc/stat``): a virtual machine whose host is
    busy runs its guests' work slower, whichever tool is being timed."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / _TICKS if fields[0] == "cpu" and len(fields) > 8 else 0.0
    except (OSError, ValueError):
        return 0.0


def measure(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, interval: float = 0.01
) -> Measurement:
    """Run ``argv`` to completion and measure it; output goes to files, never a pipe that could fill."""
    load = os.getloadavg()[0]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-measure-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        stolen = steal_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = single = naive = 0
        samples = 0
        sampler_cpu = 0.0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, single, naive, samples, sampler_cpu
            cpu_started = time.thread_time()
            next_pss = 0.0
            while not done.is_set():
                now = time.monotonic()
                total, largest, rss_sum = tree_memory(proc.pid, pss=now >= next_pss)
                if now >= next_pss:
                    next_pss = now + PSS_INTERVAL
                peak, single, naive = max(peak, total), max(single, largest), max(naive, rss_sum)
                samples += 1
                done.wait(interval)
            sampler_cpu = time.thread_time() - cpu_started

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 rather than proc.wait(): the CPU time of this child and its reaped descendants
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        stolen = steal_seconds() - stolen
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
        peak_rss_tree_naive=naive,
        samples=samples,
        sampler_cpu_seconds=sampler_cpu,
        stdout=stdout,
        stderr=stderr,
        loadavg_before=load,
        steal_seconds=stolen,
    )


def method_note() -> str:
    """How peak RSS was measured on this machine, for the report."""
    me = os.getpid()
    children_file = Path(f"/proc/{me}/task/{me}/children").exists()
    return (
        "peak RSS = max(process-tree sum, largest per-process VmHWM); VmHWM and VmRSS read from /proc every "
        "10 ms; the tree sum is of PSS (every 250 ms: reading it costs the tool's CPU) when a tool runs several "
        "processes (copy-on-write pages of forked workers counted once), else of VmRSS"
    ) + ("" if children_file else "; /proc/PID/task/TID/children is missing here, so the sum covers the root only")
