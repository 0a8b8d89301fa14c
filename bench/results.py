"""What one benchmark run measured, per tool and phase (plain data, serialised to JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1_000_000  # throughput in decimal MB/s, as restic and the issue quote it
MIB = 1 << 20

PHASES = ("full", "incremental", "restore")


@dataclass
class PhaseResult:
    seconds: float
    cpu_seconds: float
    peak_rss: int
    #: dataset bytes (the whole tree, changed or not) per second
    mb_per_s: float
    ok: bool
    error: str = ""
    peak_rss_tree_sampled: int = 0
    peak_rss_single: int = 0
    peak_rss_tree_naive: int = 0
    loadavg_before: float = 0.0
    #: CPU the benchmark's memory sampler used meanwhile (it competes with the tool for the cores)
    sampler_cpu_seconds: float = 0.0
    steal_seconds: float = 0.0


@dataclass
class ToolResult:
    tool: str
    version: str
    phases: dict[str, PhaseResult] = field(default_factory=dict)
    repo_bytes_full: int = 0
    repo_bytes_incremental: int = 0
    restore_problems: list[str] = field(default_factory=list)
    #: the tool's own summary of each backup (bcpctl and restic print JSON), kept for tuning
    tool_reports: dict[str, object] = field(default_factory=dict)

    @property
    def incremental_added(self) -> int:
        return self.repo_bytes_incremental - self.repo_bytes_full

    @property
    def peak_rss(self) -> int:
        return max((p.peak_rss for p in self.phases.values()), default=0)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.phases.values()) and not self.restore_problems and len(self.phases) == 3


@dataclass
class RunResult:
    dataset_bytes: int
    dataset_files: int
    size: str
    seed: int
    mutate_pct: float
    mutation_new_bytes: int
    tools: dict[str, ToolResult]
    notes: list[str]
    started: str
    cpu_count: int
    repeat: int = 1
    #: every repetition's raw results when --repeat > 1 (``tools`` then holds the medians)
    repetitions: list[dict[str, ToolResult]] = field(default_factory=list)
    scale_memory: dict[str, object] | None = None
    #: the dataset's shape (:data:`bench.dataset.SHAPES`)
    shape: str = "mixed"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def median_result(runs: list[ToolResult]) -> ToolResult:
    """One tool's repetitions folded into medians per phase; any failed repetition fails the result."""
    first = runs[0]
    merged = ToolResult(first.tool, first.version, tool_reports=first.tool_reports)
    for phase in PHASES:
        got = [r.phases[phase] for r in runs if phase in r.phases]
        if len(got) != len(runs):
            continue
        merged.phases[phase] = PhaseResult(
            seconds=_median([p.seconds for p in got]),
            cpu_seconds=_median([p.cpu_seconds for p in got]),
            peak_rss=int(_median([p.peak_rss for p in got])),
            mb_per_s=_median([p.mb_per_s for p in got]),
            ok=all(p.ok for p in got),
            error="; ".join(p.error for p in got if p.error),
            peak_rss_tree_sampled=int(_median([p.peak_rss_tree_sampled for p in got])),
            peak_rss_single=int(_median([p.peak_rss_single for p in got])),
            peak_rss_tree_naive=int(_median([p.peak_rss_tree_naive for p in got])),
            loadavg_before=_median([p.loadavg_before for p in got]),
            sampler_cpu_seconds=_median([p.sampler_cpu_seconds for p in got]),
            steal_seconds=_median([p.steal_seconds for p in got]),
        )
    merged.repo_bytes_full = int(_median([r.repo_bytes_full for r in runs]))
    merged.repo_bytes_incremental = merged.repo_bytes_full + int(_median([r.incremental_added for r in runs]))
    merged.restore_problems = [p for r in runs for p in r.restore_problems]
    return merged
