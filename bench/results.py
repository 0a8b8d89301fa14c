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
    loadavg_before: float = 0.0


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
    scale_memory: dict[str, object] | None = None
