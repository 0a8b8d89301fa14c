"""The drain's CPU accounting counts what a tool detaches (pgBackRest's ``archive-push:async``):
a process that forks a worker, lets it outlive it and exits must be charged the worker's CPU."""

from __future__ import annotations

import subprocess
import sys

from bench.walasync import DescendantCpu

_BUSY = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


def test_a_detached_grandchild_is_counted_once_it_exits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "marker"
    script = tmp_path / "busy.py"
    script.write_text(_BUSY)
    with DescendantCpu() as cpu:
        # the shell exits at once; its detached python is nobody's child it waits for
        subprocess.run(["sh", "-c", f"setsid {sys.executable} {script} {marker} >/dev/null 2>&1 &"], check=True)
        seconds = cpu.finish(str(marker).encode(), timeout=60)
    assert seconds >= 0.35


def test_nothing_started_costs_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with DescendantCpu() as cpu:
        seconds = cpu.finish(b"/nothing/runs/with/this/name", timeout=1)
    assert seconds < 0.05
