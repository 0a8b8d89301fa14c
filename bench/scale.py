"""``--scale-memory``: does a tool's peak memory stay bounded as the repository grows?

Issue 2 requires bcpctl not to hold every chunk id of a huge repository in Python objects, and
the benchmark to show it. Three backups per tool, each measured for peak RSS of the process
tree: the 1x dataset into an empty repository; a FACTOR-times larger dataset of distinct data
(its own seed, so nothing deduplicates) into an empty repository; then the 1x dataset into
that big repository, whose index is FACTOR times larger than in the first case.

    python -m bench.scale [--size 1G] [--seed 1] [--factor 10] [--tools bcpctl,restic]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from rich.console import Console

from bench.dataset import cached, parse_size
from bench.manifest import read_all, tree_bytes
from bench.measure import measure
from bench.tools import make_tool

_SEED_OFFSET = 1000  # the big dataset's seed: distinct content from the 1x dataset


def _backup(
    tool_name: str, workdir: Path, source: Path, console: Console, label: str, keep: bool = False
) -> tuple[dict[str, float], object]:
    tool = make_tool(tool_name, workdir)
    if not (tool.repo.exists()):
        init = tool.run(tool.init())
        if init.returncode != 0:
            raise SystemExit(f"bench.scale: {tool_name} init failed: {init.stderr.strip()[-300:]}")
    read_all(source)
    os.sync()
    m = measure(tool.backup(source), env=tool.env())
    row = {
        "seconds": m.seconds,
        "peak_rss": m.peak_rss,
        "repo_bytes": tree_bytes(tool.repo),
        "ok": m.returncode == 0,
    }
    console.print(
        f"  {tool_name:7} {label:14} {m.seconds:7.1f} s  {m.peak_rss / (1 << 20):6.0f} MiB"
        + ("" if m.returncode == 0 else f"  FAILED: {m.stderr.strip()[-200:]}")
    )
    if not keep:
        shutil.rmtree(workdir)
    return row, tool


def scale_memory(out: Path, size: int, seed: int, factor: int, tools: list[str], console: Console) -> dict[str, object]:
    console.print(f"scale-memory: generating/using a {factor}x dataset (seed {seed + _SEED_OFFSET})")
    small, small_summary = cached(out / "datasets", size, seed)
    big, big_summary = cached(out / "datasets", size * factor, seed + _SEED_OFFSET)
    base = out / "scale"
    if base.exists():
        shutil.rmtree(base)
    results: dict[str, dict[str, object]] = {}
    for name in tools:
        one, _t = _backup(name, base / f"{name}-1x", small, console, "1x")
        ten, _t = _backup(name, base / f"{name}-big", big, console, f"{factor}x", keep=True)
        into, _t = _backup(name, base / f"{name}-big", small, console, f"1x into {factor}x")
        results[name] = {"1x": one, "big": ten, "1x_into_big": into}
    shutil.rmtree(base, ignore_errors=True)
    return {
        "factor": factor,
        "bytes_1x": small_summary.total_bytes,
        "bytes_big": big_summary.total_bytes,
        "tools": results,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.report import render_scale
    from bench.run import OUT

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="the 1x size (default 1G)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--tools", default="bcpctl,restic")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    console = Console()
    result = scale_memory(args.out, parse_size(args.size), args.seed, args.factor, args.tools.split(","), console)
    markdown = render_scale(result, console)
    (args.out / "scale-memory.json").write_text(json.dumps(result, indent=2))
    (args.out / "scale-memory.md").write_text(markdown + "\n")
    return 0 if all(r[k]["ok"] for r in result["tools"].values() for k in r) else 1  # type: ignore[union-attr,index]


if __name__ == "__main__":
    sys.exit(main())
