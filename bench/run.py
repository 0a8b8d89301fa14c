"""``make bench``: bcpctl, restic and borg on the same municipal dataset, in one run.

Each shape of data (``--shape``, both by default: ``mixed`` and ``dumps``, see
:mod:`bench.dataset`) is a run of its own with its own tables and verdicts. For every tool:
a full backup, an incremental backup after a PCT % mutation of the source, and a restore of
the latest snapshot into a fresh directory that must match the source's checksum manifest (a
wrong restore fails the run, exit 1). Reports time, MB/s, CPU time, peak memory of the whole
process tree, repository size after the full backup and bytes added by the incremental, and
the ratios against restic that issue 18 sets as targets (:mod:`bench.targets`).

    python -m bench.run [--size 1G] [--seed 1] [--shape mixed,dumps] [--mutate 5]
                        [--tools bcpctl,restic,borg] [--scale-memory [--scale-factor 10]] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import report
from bench.dataset import SHAPES, cached, parse_size
from bench.installed import compile_packages
from bench.manifest import differences, manifest, read_all, tree_bytes
from bench.measure import Measurement, measure, method_note
from bench.mutation import mutate_dataset
from bench.results import MB, PhaseResult, RunResult, ToolResult, median_result
from bench.targets import Verdict, evaluate
from bench.tools import TOOLS, Tool, make_tool

OUT = Path(__file__).resolve().parent / "out"


def _phase(m: Measurement, dataset_bytes: int, ok: bool, error: str = "") -> PhaseResult:
    return PhaseResult(
        seconds=m.seconds,
        cpu_seconds=m.cpu_seconds,
        peak_rss=m.peak_rss,
        mb_per_s=dataset_bytes / MB / m.seconds if m.seconds > 0 else 0.0,
        ok=ok,
        error=error,
        peak_rss_tree_sampled=m.peak_rss_tree_sampled,
        peak_rss_single=m.peak_rss_single,
        peak_rss_tree_naive=m.peak_rss_tree_naive,
        loadavg_before=m.loadavg_before,
        sampler_cpu_seconds=m.sampler_cpu_seconds,
        steal_seconds=m.steal_seconds,
    )


def _error(m: Measurement) -> str:
    lines = (m.stderr.strip() or m.stdout.strip()).splitlines()
    return f"exit {m.returncode}: {lines[-1] if lines else 'no output'}"


def _stolen(m: Measurement) -> str:
    """A note when the host took a noticeable share of the CPUs during the step."""
    share = m.steal_seconds / (m.seconds * (os.cpu_count() or 1)) if m.seconds > 0 else 0.0
    return f"  (steal {share:.0%})" if share >= 0.02 else ""


def _tool_report(m: Measurement) -> object:
    """The tool's own JSON summary (bcpctl --json, restic --json's last line), if it printed one."""
    for text in (m.stdout, m.stdout.strip().splitlines()[-1] if m.stdout.strip() else ""):
        try:
            return json.loads(text)
        except ValueError:
            continue
    return None


def _timed_backup(
    tool: Tool, result: ToolResult, phase: str, source: Path, dataset_bytes: int, console: Console
) -> bool:
    _warm(tool, source)
    m = measure(tool.backup(source), env=tool.env())
    ok = m.returncode == 0
    result.phases[phase] = _phase(m, dataset_bytes, ok, "" if ok else _error(m))
    result.tool_reports[phase] = _tool_report(m)
    size = tree_bytes(tool.repo)
    if phase == "full":
        result.repo_bytes_full = size
    else:
        result.repo_bytes_incremental = size
    console.print(
        f"  {tool.name:7} {phase:11} {m.seconds:7.1f} s  {m.peak_rss / (1 << 20):6.0f} MiB"
        f"  repo {size / (1 << 20):8.1f} MiB{_stolen(m)}" + ("" if ok else f"  FAILED {_error(m)}")
    )
    return ok


def _timed_restore(
    tool: Tool,
    result: ToolResult,
    source: Path,
    expected: dict[str, str],
    work: Path,
    dataset_bytes: int,
    console: Console,
) -> None:
    target = work / tool.name / "restore"
    target.mkdir(parents=True)  # a repetition's work directory is new: nothing to delete
    _warm(tool, tool.repo)
    argv, cwd = tool.restore(target)
    m = measure(argv, env=tool.env(), cwd=cwd)
    ok = m.returncode == 0
    if ok:
        result.restore_problems = differences(expected, tool.restored_root(target, source))
    else:
        result.restore_problems = [_error(m)]
    result.phases["restore"] = _phase(
        m, dataset_bytes, ok and not result.restore_problems, "; ".join(result.restore_problems)
    )
    console.print(
        f"  {tool.name:7} {'restore':11} {m.seconds:7.1f} s  {m.peak_rss / (1 << 20):6.0f} MiB{_stolen(m)}  "
        + ("verified" if not result.restore_problems else "WRONG: " + "; ".join(result.restore_problems))
    )
    # The restored tree stays until the repetition ends: deleting thousands of files right
    # before the next tool's restore makes ext4 scan past recently freed inodes at every file
    # it creates (``recently_deleted``), a kernel cost charged to whichever tool comes next.


def _warm(tool: Tool, data: Path) -> None:
    """Every tool starts the same way: from a dropped page cache (where allowed), with its
    input and its own program files read back in, and no dirty pages left by the previous
    step for it to pay for.

    Dropping matters on a virtual machine: writing into page cache the guest had not used
    lately costs more than reusing pages just freed, so without it a restore that ran after
    another tool's would pay for that tool's pages (docs/performance.md).
    """
    _drop_caches()
    for path in (data, *tool.installed()):
        read_all(path)
    os.sync()


def _rotate(names: list[str], k: int) -> list[str]:
    """Each phase starts with a different tool so no tool always runs first (or last)."""
    k %= len(names)
    return names[k:] + names[:k]


def _repetition(
    args: argparse.Namespace, data: Path, dataset_bytes: int, names: list[str], rep: int, console: Console
) -> tuple[dict[str, ToolResult], int, int]:
    """Fresh source copy and repositories; full, mutate, incremental, restore. Returns results, new and total bytes."""
    work = args.out / "run"
    if work.exists():
        _set_aside(work, args.out)
    source = work / "source"
    work.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(data), str(source)], check=True)
    tools = {n: make_tool(n, work / n) for n in names}
    results = {n: ToolResult(n, tools[n].version()) for n in names}
    for n, tool in tools.items():
        init = tool.run(tool.init())
        if init.returncode != 0:
            raise SystemExit(f"bench.run: {n} init failed: {init.stderr.strip()[-300:]}")

    alive = set(names)
    console.print(f"full backup (repetition {rep + 1} of {args.repeat})")
    for n in _rotate(names, rep):
        if not _timed_backup(tools[n], results[n], "full", source, dataset_bytes, console):
            alive.discard(n)
    mutation = mutate_dataset(source, args.mutate, args.seed, 1)
    total = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    console.print(
        f"mutated the source: {mutation.total_new / (1 << 20):.1f} MiB new ({mutation.total_new / total:.1%})"
    )
    console.print("incremental backup")
    for n in _rotate(names, rep + 1):
        if n in alive and not _timed_backup(tools[n], results[n], "incremental", source, total, console):
            alive.discard(n)
    expected = manifest(source)
    console.print("restore")
    for n in _rotate(names, rep + 2):
        if n in alive:
            _timed_restore(tools[n], results[n], source, expected, work, total, console)
    if not args.keep:
        _set_aside(work, args.out)
    return results, mutation.total_new, total


def _trash(out: Path) -> Path:
    return out / "trash"


_DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def _drop_caches() -> bool:
    """Write back, then drop the clean page cache (root only); ``False`` where not allowed."""
    os.sync()
    try:
        _DROP_CACHES.write_text("1\n")
    except OSError:
        return False
    return True


def _set_aside(work: Path, out: Path) -> None:
    """Move a finished repetition's files out of the way; they are deleted after the run.

    Nothing is deleted while a run is timed: on journal-less ext4 a file created after a mass
    deletion scans past the freed inodes (``recently_deleted``) for up to six minutes, and
    dropping the cache does not help (allocation reads the inode tables back; figures in
    docs/performance.md).
    """
    trash = _trash(out)
    trash.mkdir(parents=True, exist_ok=True)
    work.rename(trash / f"{work.name}-{time.monotonic_ns()}")


#: ext4's RECENTCY_MIN + RECENTCY_DIRTY (fs/ext4/ialloc.c): how long a freed inode may count as
#: recent while files are being created next to it (their inode-table block is dirty)
_RECENTLY_DELETED_SECONDS = 360


def _deleted_stamp(out: Path) -> Path:
    return out / "last-deletion"


def _empty_trash(out: Path) -> None:
    """Delete set-aside files and note when, so the next run can wait the deletion out."""
    if _trash(out).exists():
        shutil.rmtree(_trash(out))
        os.sync()
        _deleted_stamp(out).write_text(f"{time.time()}\n")


def _settle(out: Path, console: Console) -> None:
    """Before anything is timed: delete an earlier run's leftovers, then wait until no
    deletion of an earlier run is recent enough for ext4 to charge it to this one."""
    _empty_trash(out)
    try:
        deleted = float(_deleted_stamp(out).read_text())
    except (OSError, ValueError):
        return
    wait = deleted + _RECENTLY_DELETED_SECONDS - time.time()
    if wait > 0:
        console.print(f"waiting {wait:.0f} s: an earlier run deleted its files {time.time() - deleted:.0f} s ago")
        time.sleep(wait)


def run(args: argparse.Namespace, console: Console, shape: str = "mixed") -> tuple[RunResult, int]:
    names = args.tools.split(",")
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise SystemExit(f"bench.run: unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    console.print(f"dataset: {shape}, {args.size} seed {args.seed} (cached under {args.out / 'datasets'})")
    can_drop = _drop_caches()
    data, summary = cached(args.out / "datasets", parse_size(args.size), args.seed, shape=shape)
    reps = [_repetition(args, data, summary.total_bytes, names, rep, console) for rep in range(args.repeat)]
    runs = [r[0] for r in reps]
    results = runs[0] if args.repeat == 1 else {n: median_result([r[n] for r in runs]) for n in names}
    notes = [
        "before every timed step the source (or, for restores, the repository) and the tool's own program "
        "files were read once so every tool starts warm, and sync ran so no tool pays another's writeback",
        "nothing is deleted while a run is timed, nor in the six minutes before (on journal-less ext4 a file "
        "created soon after a mass deletion pays a scan of the freed inodes): finished repetitions are set aside "
        "and deleted at the end" + ("; each repetition starts from an empty page cache" if can_drop else ""),
        "steal = CPU time the hypervisor gave other guests during a step (JSON); a busy host slows every tool",
        method_note(),
        "MB/s = bytes of the whole dataset / wall seconds (1 MB = 10^6 B), for incrementals too",
        "settings: restic --compression auto on a v2 repository; borg --compression zstd,3, repokey; "
        "bcpctl defaults; each tool has a private, initially empty cache",
        f"machine: {os.cpu_count()} CPUs; load average before each step is in the JSON (other jobs may share "
        "this machine); tool order rotates per phase",
    ]
    if args.nice:
        notes.append(f"every tool ran at niceness {args.nice} (inherited from the benchmark)")
    if args.repeat > 1:
        notes.append(f"figures are medians of {args.repeat} repetitions, each on a fresh copy and fresh repositories")
    result = RunResult(
        dataset_bytes=summary.total_bytes,
        dataset_files=sum(summary.files.values()),
        size=args.size,
        seed=args.seed,
        mutate_pct=args.mutate,
        mutation_new_bytes=reps[0][1],
        tools=results,
        notes=notes,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        cpu_count=os.cpu_count() or 0,
        repeat=args.repeat,
        repetitions=runs if args.repeat > 1 else [],
        shape=shape,
    )
    broken = [n for n, r in results.items() if not r.ok]
    return result, (1 if broken else 0)


_AUTOGROUP = Path("/proc/self/autogroup")


def _prioritise(nice: int) -> int | None:
    """Set this process's niceness (tools inherit it); returns the autogroup's old niceness, if changed.

    With CONFIG_SCHED_AUTOGROUP each session is one scheduling group and niceness only ranks
    processes inside it, so the group's own niceness is set too, and restored afterwards.
    """
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    try:
        previous = int(_AUTOGROUP.read_text().split("nice")[1])
        _AUTOGROUP.write_text(str(nice))
        return previous
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="dataset size (default 1G)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shape",
        default=",".join(SHAPES),
        help=f"shapes of data, comma-separated, each a run of its own (default {','.join(SHAPES)})",
    )
    parser.add_argument("--mutate", type=float, default=5.0, help="%% of bytes the incremental sees changed")
    parser.add_argument("--tools", default="bcpctl,restic,borg")
    parser.add_argument("--out", type=Path, default=OUT, help="datasets, runs and results (default bench/out)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; figures are their medians")
    parser.add_argument("--keep", action="store_true", help="keep repositories and the source copy")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the benchmark (and so every tool, which inherits it) at this niceness; -10 keeps other jobs "
        "on a shared machine from skewing one tool more than another (needs root)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target of issue 18 is missed on any shape")
    parser.add_argument("--scale-memory", action="store_true", help="also compare peak RSS at 1x and 10x data (slow)")
    parser.add_argument("--scale-factor", type=int, default=10)
    args = parser.parse_args(argv)
    compile_packages()
    shapes = args.shape.split(",")
    if unknown := [s for s in shapes if s not in SHAPES]:
        raise SystemExit(f"bench.run: unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    console = Console()
    previous_group_nice = _prioritise(args.nice) if args.nice else None
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outcomes: list[tuple[RunResult, list[Verdict], int]] = []
    # One settling wait for every shape: their set-aside files are deleted only after the last.
    _settle(args.out, console)
    try:
        for shape in shapes:
            result, code = run(args, console, shape)
            verdicts = (
                evaluate(result.tools["bcpctl"], result.tools["restic"])
                if {"bcpctl", "restic"} <= set(result.tools)
                else []
            )
            outcomes.append((result, verdicts, code))
    finally:
        _empty_trash(args.out)
        if previous_group_nice is not None:
            _AUTOGROUP.write_text(str(previous_group_nice))
    if args.scale_memory:
        from bench.scale import scale_memory

        first = outcomes[0][0]
        first.scale_memory = scale_memory(
            args.out,
            parse_size(args.size),
            args.seed,
            args.scale_factor,
            [n for n in ("bcpctl", "restic") if n in first.tools],
            console,
        )
    written = report.write_all([(r, v, report.render(r, v, console)) for r, v, _ in outcomes], args.out, stamp)
    console.print(f"results: {', '.join(str(p) for p in written)} (and {args.out / 'latest.md'})")
    if any(code for _, _, code in outcomes):
        console.print("[red]a tool failed or restored wrong data[/]")
        return 1
    if args.strict and not all(v.passed for _, verdicts, _ in outcomes for v in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
