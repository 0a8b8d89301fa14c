"""The performance targets of issue 18 as a pure function of two tools' results.

Targets, measured in the same run on the same data, on every shape of data (issue 18,
"Speed"): full backup ≥ 2.0x restic's throughput, incremental ≥ 1.75x, restore ≥ 2.0x;
repository size and bytes added by the incremental no larger than restic's; peak memory
(PSS summed over the tool's processes, :mod:`bench.measure`) no more than 1.25x restic's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results import ToolResult


@dataclass(frozen=True)
class Target:
    name: str
    #: "speedup": ratio = theirs / ours (time); "size": ratio = ours / theirs
    kind: str
    #: minimum speedup, or maximum size ratio
    bound: float
    value: Callable[[ToolResult], float]
    unit: str


def _seconds(phase: str) -> Callable[[ToolResult], float]:
    def value(r: ToolResult) -> float:
        p = r.phases.get(phase)
        return p.seconds if p else float("nan")

    return value


TARGETS: tuple[Target, ...] = (
    Target("full backup throughput", "speedup", 2.0, _seconds("full"), "s"),
    Target("incremental backup throughput", "speedup", 1.75, _seconds("incremental"), "s"),
    Target("restore throughput", "speedup", 2.0, _seconds("restore"), "s"),
    Target("repository size after full", "size", 1.0, lambda r: float(r.repo_bytes_full), "B"),
    Target("bytes added by incremental", "size", 1.0, lambda r: float(r.incremental_added), "B"),
    Target("peak RSS", "size", 1.25, lambda r: float(r.peak_rss), "B"),
)


@dataclass(frozen=True)
class Verdict:
    name: str
    ours: float
    theirs: float
    ratio: float
    #: e.g. "≥ 2.0x" or "≤ 1.5x"
    goal: str
    passed: bool
    note: str = ""


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return numerator / denominator
    return 1.0 if numerator == 0 else float("inf")


def _bound(value: float) -> str:
    """``2.0``, ``1.75``: as many decimals as the target has, never rounded."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


def evaluate(ours: ToolResult, theirs: ToolResult) -> list[Verdict]:
    """One verdict per target; a target over a phase that failed or restored wrong data fails."""
    verdicts = []
    for t in TARGETS:
        a, b = t.value(ours), t.value(theirs)
        if t.kind == "speedup":
            ratio = _ratio(b, a)
            passed, goal = ratio >= t.bound, f"≥ {_bound(t.bound)}x"
        else:
            ratio = _ratio(a, b)
            passed, goal = ratio <= t.bound, f"≤ {_bound(t.bound)}x"
        note = ""
        if not ours.ok:
            passed, note = False, "bcpctl run failed or restored wrong data"
        elif not theirs.ok:
            passed, note = False, f"{theirs.tool} run failed: no valid comparison"
        verdicts.append(Verdict(t.name, a, b, ratio, goal, passed, note))
    return verdicts
