"""Repetitions fold into medians; one bad repetition spoils the result."""

from __future__ import annotations

from bench.results import PhaseResult, ToolResult, median_result


def _run(seconds: float, rss: int, added: int, ok: bool = True) -> ToolResult:
    r = ToolResult("bcpctl", "t")
    for phase in ("full", "incremental", "restore"):
        r.phases[phase] = PhaseResult(seconds, seconds, rss, 1.0 / seconds, ok)
    r.repo_bytes_full = 1000
    r.repo_bytes_incremental = 1000 + added
    return r


def test_medians_per_phase() -> None:
    merged = median_result([_run(3.0, 300, 30), _run(1.0, 100, 10), _run(2.0, 200, 20)])
    assert merged.phases["full"].seconds == 2.0
    assert merged.peak_rss == 200
    assert merged.incremental_added == 20
    assert merged.ok


def test_one_failed_repetition_fails_the_result() -> None:
    merged = median_result([_run(1.0, 100, 10), _run(1.0, 100, 10, ok=False)])
    assert not merged.ok


def test_a_repetition_missing_a_phase_drops_that_phase() -> None:
    broken = _run(1.0, 100, 10)
    del broken.phases["restore"]
    merged = median_result([_run(1.0, 100, 10), broken])
    assert "restore" not in merged.phases
    assert not merged.ok
