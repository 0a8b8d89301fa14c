"""An incremental replication as a running ``bcpctl replicate --follow`` performs it.

A one-shot ``bcpctl replicate`` pays Python's start-up (the S3 client, the control database's
SQLAlchemy) on every run, which an incremental of a few objects does not amortise; rclone's Go
binary starts in milliseconds. A follower pays it once: this measures what the same kind of
incremental then costs it — the rounds that the new snapshot and its signed manifest trigger,
their wall time, and the follower's own CPU from the change to the end of those rounds (its
idle polls during the backup included) — beside a one-shot rclone of the same change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _files(repo: Path) -> set[str]:
    return {str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()}


def follow_incremental(
    repo: Path, url: str, env: dict[str, str], change: Callable[[], None], interval: float = 0.5
) -> dict[str, Any]:
    """Start a follower on ``url``, apply ``change`` at the primary once it is idle, and measure
    the rounds that ship the change (the backup and its signature may each trigger one)."""
    follower = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "replicate", "--from", str(repo), "--to", url, "--follow",
         "--interval", str(interval), "--jobs", "4", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    stdout = follower.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: events.extend(json.loads(line) for line in stdout), daemon=True)
    reader.start()
    try:
        _wait(lambda: bool(events), 300)  # the start-up's full round (catches up the target)
        before, seen = _files(repo), len(events)
        cpu = _cpu_seconds(follower.pid)
        change()
        new = len(_files(repo) - before)
        rounds = lambda: [e for e in events[seen:] if e.get("event") == "round"]  # noqa: E731
        _wait(lambda: sum(r["objects_copied"] for r in rounds()) >= new, 300)
        cpu = _cpu_seconds(follower.pid) - cpu
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=120)
        reader.join(10)
    shipped = rounds()
    return {
        "seconds": round(sum(r["seconds"] for r in shipped), 2),
        "rounds": len(shipped),
        "cpu_seconds": round(cpu, 2),
        "bytes_sent": sum(r["bytes_sent"] for r in shipped),
        "transfers": sum(r["objects_copied"] for r in shipped),
    }


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the follower did not get there within {timeout:.0f} s")
        time.sleep(0.05)
