"""The issue-18 targets as ratios against restic, including what a failed run does to them."""

from __future__ import annotations

from bench.results import PhaseResult, ToolResult
from bench.targets import evaluate

_MIB = 1 << 20


def _result(tool: str, full: float, incr: float, restore: float, repo: int, added: int, rss: int) -> ToolResult:
    r = ToolResult(tool, "test")
    for phase, seconds in (("full", full), ("incremental", incr), ("restore", restore)):
        r.phases[phase] = PhaseResult(seconds, seconds, rss * _MIB, 1000 / seconds, True)
    r.repo_bytes_full = repo * _MIB
    r.repo_bytes_incremental = (repo + added) * _MIB
    return r


def _by_name(verdicts):
    return {v.name: v for v in verdicts}


def test_all_targets_met() -> None:
    ours = _result("bcpctl", full=5.0, incr=2.0, restore=2.4, repo=500, added=60, rss=160)
    restic = _result("restic", full=10.0, incr=3.5, restore=4.8, repo=510, added=63, rss=134)
    verdicts = _by_name(evaluate(ours, restic))
    assert all(v.passed for v in verdicts.values()), verdicts
    assert verdicts["full backup throughput"].ratio == 2.0
    assert verdicts["incremental backup throughput"].ratio == 1.75
    assert round(verdicts["peak RSS"].ratio, 2) == round(160 / 134, 2)


def test_each_target_can_fail() -> None:
    ours = _result("bcpctl", full=6.0, incr=2.1, restore=3.0, repo=520, added=64, rss=170)
    restic = _result("restic", full=10.0, incr=3.6, restore=4.8, repo=510, added=63, rss=134)
    verdicts = evaluate(ours, restic)
    assert [v.passed for v in verdicts] == [False] * 6
    assert {v.goal for v in verdicts} == {"≥ 2.0x", "≥ 1.75x", "≤ 1.0x", "≤ 1.25x"}


def test_a_wrong_restore_fails_every_target() -> None:
    ours = _result("bcpctl", full=1.0, incr=1.0, restore=1.0, repo=1, added=1, rss=1)
    ours.restore_problems = ["content differs: sql/08226_naka/juki.sql"]
    restic = _result("restic", full=10.0, incr=3.6, restore=4.8, repo=510, added=63, rss=134)
    verdicts = evaluate(ours, restic)
    assert not any(v.passed for v in verdicts)
    assert all("wrong data" in v.note for v in verdicts)


def test_a_missing_phase_fails_its_target() -> None:
    ours = _result("bcpctl", full=1.0, incr=1.0, restore=1.0, repo=1, added=1, rss=1)
    del ours.phases["restore"]
    restic = _result("restic", full=10.0, incr=3.6, restore=4.8, repo=510, added=63, rss=134)
    assert not _by_name(evaluate(ours, restic))["restore throughput"].passed
