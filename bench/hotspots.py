"""Where bcpctl spends its time: each benchmark phase once more under py-spy.

Not part of the timed run (sampling slows the process). Two profiles per phase: every
sample of every thread that is running (where the CPU goes, native zstd/AES/BLAKE3 calls
charged to the Python line that made them), and only samples holding the GIL (what
serialises the worker threads). Output: the top functions by self and inclusive share,
plus py-spy's raw collapsed stacks for a flame graph (``flamegraph.pl`` or speedscope).

    python -m bench.hotspots [--size 1G] [--seed 1] [--top 15]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.dataset import cached, parse_size
from bench.manifest import read_all
from bench.mutation import mutate_dataset
from bench.run import OUT
from bench.tools import make_tool


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("bench.hotspots: py-spy not found; install it with `.venv/bin/pip install py-spy`")
    return found


def summarise(raw: str, top: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]], int]:
    """Top frames by self and inclusive share of samples, from py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return [], [], 0
    return (
        [(f, n / total) for f, n in own.most_common(top)],
        [(f, n / total) for f, n in inclusive.most_common(top)],
        total,
    )


def _record(argv: list[str], env: dict[str, str], out: Path, gil: bool, cwd: Path | None = None) -> str:
    cmd = [_py_spy(), "record", "--format", "raw", "--rate", "200", "--threads", "--subprocesses", "-o", str(out)]
    if gil:
        cmd.append("--gil")
    subprocess.run([*cmd, "--", *argv], env=env, cwd=cwd, check=True, capture_output=True)
    return out.read_text()


def _table(title: str, rows: list[tuple[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("share", justify="right")
    table.add_column("function (file:line)")
    for frame, share in rows:
        table.add_row(f"{share:.1%}", frame)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutate", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    console = Console()
    data, _summary = cached(args.out / "datasets", parse_size(args.size), args.seed)
    work = args.out / "hotspots"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for gil in (False, True):
        kind = "gil" if gil else "cpu"
        source = work / f"source-{kind}"
        subprocess.run(["cp", "-a", str(data), str(source)], check=True)
        tool = make_tool("bcpctl", work / f"bcpctl-{kind}")
        tool.run(tool.init())
        for phase in ("full", "incremental", "restore"):
            if phase == "incremental":
                mutate_dataset(source, args.mutate, args.seed, 1)
            read_all(source)
            if phase == "restore":
                target = work / f"restore-{kind}"
                target.mkdir()
                cmd, cwd = tool.restore(target)
            else:
                cmd, cwd = tool.backup(source), None
            raw = _record(cmd, tool.env(), args.out / f"hotspots-{phase}-{kind}.txt", gil, cwd)
            own, inclusive, samples = summarise(raw, args.top)
            what = "holding the GIL" if gil else "on CPU, all threads"
            console.print(_table(f"bcpctl {phase}: self time, {what} ({samples} samples)", own))
            console.print(_table(f"bcpctl {phase}: inclusive time, {what}", inclusive))
    shutil.rmtree(work)
    console.print(f"raw stacks: {args.out}/hotspots-*.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
