"""bench/controller.py: the prefecture it builds and how it judges a phase (the run itself is not a test)."""

from __future__ import annotations

from pathlib import Path

from bench.controller import Phase, build, verdicts
from dc.config import load_config
from monitoring.schedule import plan_jobs
from monitoring.tasks import TASKS


def _phase(**changes: object) -> Phase:
    base = dict(
        label="x1",
        snapshots_before=10,
        window=120.0,
        backups=90,
        failures=0,
        missed=0,
        cpu_seconds=2.7,
        cpu_share=0.0225,
        cpu_per_job=0.03,
        metrics_seconds=0.1,
        metrics_series=4000,
        load_average="1.0",
    )
    return Phase(**{**base, **changes})  # type: ignore[arg-type]


def test_the_prefecture_has_the_issues_tiers_and_a_valid_config(tmp_path: Path) -> None:
    config = build(tmp_path, towns=2, per_town=33)
    consortium, _where = load_config(config)
    assert len(consortium.systems) == 66
    tiers = sorted(s.tier for s in consortium.systems.values())
    assert tiers.count(1) == 10 and tiers.count(2) == 20 and tiers.count(3) == 36
    intervals = {spec.interval for spec in plan_jobs(consortium, TASKS) if spec.kind == "backup"}
    assert intervals == {450.0, 1800.0, 43200.0}
    for system in consortium.systems.values():
        assert (Path(system.source.value()) / "records.csv").stat().st_size < 1000


def test_each_target_fails_on_its_own() -> None:
    assert all(ok for _t, ok, _v in verdicts([_phase()]))
    for change, broken in (
        ({"cpu_share": 0.3}, "controller CPU"),
        ({"cpu_per_job": 0.06}, "CPU per job"),
        ({"missed": 1}, "no missed run"),
        ({"failures": 1}, "no missed run"),
        ({"metrics_seconds": 0.25}, "/metrics"),
    ):
        failed = [t for t, ok, _v in verdicts([_phase(**change)]) if not ok]
        assert len(failed) == 1 and broken in failed[0], (change, failed)
