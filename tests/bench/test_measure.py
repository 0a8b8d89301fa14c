"""Peak memory must be charged for the whole process tree, not just its largest process."""

from __future__ import annotations

import os
import sys

from bench.measure import measure, steal_seconds

_MIB = 1 << 20

# two children each touch 120 MiB at the same time; the parent stays small
_TREE = """
import subprocess, sys
child = "import time; b = b'x' * (120 << 20); time.sleep(0.8)"
procs = [subprocess.Popen([sys.executable, "-c", child]) for _ in range(2)]
sys.exit(sum(p.wait() for p in procs))
"""


def test_peak_rss_sums_concurrent_children() -> None:
    m = measure([sys.executable, "-c", _TREE])
    assert m.returncode == 0
    assert m.peak_rss_single < 200 * _MIB  # what /usr/bin/time -v would say: one child
    assert m.peak_rss_tree_sampled >= 240 * _MIB
    assert m.peak_rss >= 240 * _MIB
    assert m.cpu_seconds > 0


# the parent touches 200 MiB, then forks two children that only read it (copy-on-write)
_FORKED = """
import os, time
b = bytearray(200 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
kids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        total = sum(b[i] for i in range(0, len(b), 4096))
        time.sleep(1.0)
        os._exit(0 if total else 1)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""


def test_pages_shared_by_forked_workers_are_counted_once() -> None:
    m = measure([sys.executable, "-c", _FORKED])
    assert m.returncode == 0
    assert m.peak_rss_tree_naive >= 550 * _MIB  # VmRSS summed: the 200 MiB three times
    assert 200 * _MIB <= m.peak_rss < 300 * _MIB  # the memory that exists: once


def test_exit_code_and_output_are_kept() -> None:
    m = measure([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert m.returncode == 3
    assert m.stdout.strip() == "out"
    assert m.stderr.strip() == "err"
    assert m.seconds > 0


def test_the_benchmark_own_memory_is_not_charged_to_the_child() -> None:
    # the kernel folds a forking parent's high-water mark into the child's ru_maxrss at exec;
    # the benchmark holds hundreds of MB while mutating, which must not show up as a tool's peak
    ballast = b"x" * (300 * _MIB)
    m = measure([sys.executable, "-c", "pass"])
    assert len(ballast) == 300 * _MIB
    assert m.returncode == 0
    assert m.peak_rss < 100 * _MIB


def test_stolen_time_is_counted_in_seconds_for_the_step_only() -> None:
    before = steal_seconds()
    m = measure([sys.executable, "-c", "sum(range(3_000_000))"])
    # seconds, not clock ticks: at most every CPU's whole share of the step, and never negative
    assert 0.0 <= m.steal_seconds <= m.seconds * (os.cpu_count() or 1) + 0.02
    assert steal_seconds() >= before
