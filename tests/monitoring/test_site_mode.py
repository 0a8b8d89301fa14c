"""The scheduler in the failed-over mode: which jobs, following a failover without a restart,
and what /metrics says about the active site and the second copy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from dc.clock import utcnow
from dc.config import Consortium, load_config
from failover.activesite import resolve_active
from failover.records import RunRecord, finish_run, start_run
from monitoring.controller import Controller, ServiceSettings
from monitoring.schedule import JobSpec, plan_jobs
from monitoring.tasks import JobContext
from tests.conftest import Cli
from tests.monitoring.conftest import TWO_SYSTEMS, Lab, scrape

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
ALL = ("backup", "check", "health", "replicate", "drill")


def _failed_over() -> RunRecord:
    now = utcnow()
    return RunRecord("fo", "failover", "execute", "passed", "primary", "offsite", now, now, "h", 1, None, None,
                     None, None, None)  # fmt: skip


def test_failed_over_plan_backs_up_at_the_offsite_and_replicates_to_the_primary() -> None:
    config, _ = load_config(EXAMPLE)
    active = resolve_active(config, _failed_over(), None)
    jobs = {job.job_id: job for job in plan_jobs(config, ALL, UTC, active=active)}
    backups = [job for job in jobs.values() if job.kind == "backup"]
    # a command source (the 住基ネット CS's export tool) runs at the primary only: left out, named stranded
    commands = {name for name, s in config.systems.items() if s.source.kind == "command"}
    assert {config.systems[name].business for name in commands} == {"住基ネット連携"}
    assert {job.system for job in backups} == set(config.systems) - commands
    assert {job.site for job in backups} == {"offsite"}
    assert {j for j in jobs if j.startswith(("replicate:", "check:"))} == {
        "replicate:primary",
        "check:offsite",
        "check:primary",
    }
    assert {"health", "drill"} <= set(jobs)


def test_a_configured_third_site_takes_the_second_copy_and_the_lost_primary_is_left_alone() -> None:
    config, _ = load_config(EXAMPLE)
    raw = config.model_dump()
    raw["sites"]["tsukuba"] = {**raw["sites"]["offsite"], "name": "つくば第三拠点"}
    raw["drills"]["failover"]["second_copy"] = "tsukuba"
    third = Consortium.model_validate(raw)
    normal = {job.job_id for job in plan_jobs(third, ALL, UTC, active=resolve_active(third, None, "tsukuba"))}
    assert {"replicate:offsite", "replicate:tsukuba", "check:primary"} <= normal  # an offsite site like any other
    active = resolve_active(third, _failed_over(), "tsukuba")
    jobs = {job.job_id for job in plan_jobs(third, ALL, UTC, active=active)}
    assert {j for j in jobs if j.startswith(("replicate:", "check:"))} == {
        "replicate:tsukuba",
        "check:offsite",
        "check:tsukuba",
    }


def test_command_sources_are_not_backed_up_while_failed_over(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(
        {
            "goka-juki": {"tenant": "goka", "rpo": "15m", "restore_dir": "offsite/prod/goka-juki"},
            "naka-dump": {"tenant": "naka", "rpo": "1h", "source": {"kind": "command", "command": "echo x"}},
        }
    )
    active = resolve_active(lab.config, _failed_over(), None)
    assert {job.job_id for job in plan_jobs(lab.config, ALL, UTC, active=active)} == {"backup:goka-juki"}


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_leader_follows_a_failover_and_a_failback_without_a_restart(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(
        {name: {**spec, "restore_dir": f"offsite/prod/{name}"} for name, spec in TWO_SYSTEMS.items()},
        schedules={"backup": "1h", "replicate": "1h"},
    )
    seen: list[tuple[str, str | None, str]] = []

    def record(ctx: JobContext, spec: JobSpec) -> str:
        source = ctx.config.systems[spec.system].source.path if spec.system else ""
        seen.append((spec.job_id, spec.site, source or ""))
        return "ok"

    engine = lab.engine()
    controller = Controller(
        engine, lab.config, lab.root, ServiceSettings(lease_ttl=3, tick=0.1), {"backup": record, "replicate": record}
    )

    def stored() -> set[str]:
        scheduler = controller._scheduler
        return {job.id for job in scheduler.get_jobs()} if scheduler is not None else set()

    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        _wait(controller.is_leader, "never became the leader")
        assert {"backup:goka-juki", "replicate:offsite"} <= set(controller.specs)

        start_run(engine, "fo-1", kind="failover", mode="execute", consortium="c", site="primary",
                  declared_at=utcnow(), deadline=None, target_site="offsite")  # fmt: skip
        finish_run(engine, "fo-1", status="passed", error=None, document={})
        _wait(lambda: "replicate:primary" in stored(), "the job store never followed the failover")
        assert "replicate:offsite" not in stored() and "replicate:primary" in controller.specs
        from monitoring import jobs

        jobs.run_job("backup:goka-juki")
        jobs.run_job("replicate:primary")
        assert seen[0] == ("backup:goka-juki", "offsite", str(lab.root / "offsite/prod/goka-juki/goka-juki.sqlite"))
        assert seen[1][:2] == ("replicate:primary", "primary")
        value = scrape(lab, engine).get_sample_value
        assert value("bcp_active_site", {"site": "offsite"}) == 1 and value("bcp_active_site", {"site": "primary"}) == 0
        assert value("bcp_failed_over", {"site": "offsite"}) == 1
        assert value("bcp_active_site_since_timestamp_seconds", {"site": "offsite"}) > 0  # type: ignore[operator]
        assert value("bcp_system_protected", {"tenant": "goka", "system": "goka-juki"}) == 0

        start_run(engine, "fb-1", kind="failback", mode="failback", consortium="c", site="offsite",
                  declared_at=utcnow(), deadline=None, target_site="primary")  # fmt: skip
        finish_run(engine, "fb-1", status="passed", error=None, document={})
        _wait(lambda: "replicate:offsite" in stored(), "the job store never followed the failback")
        assert controller.specs["backup:goka-juki"].site == "primary"
        assert scrape(lab, engine).get_sample_value("bcp_failed_over", {"site": "offsite"}) == 0
    finally:
        controller.request_stop()
        thread.join(30)


def test_a_bad_second_copy_stops_serve_before_it_stores_anything(lab_factory: Callable[..., Lab]) -> None:
    from dc.errors import ConfigError
    from monitoring.service import check_config

    lab = lab_factory(TWO_SYSTEMS, extra={"drills": {"failover": {"second_copy": "mars"}}})
    try:
        check_config(lab.config_path)
    except ConfigError as exc:
        assert "drills.failover.second_copy: unknown site 'mars'" in exc.message
        assert str(lab.config_path) in exc.message
    else:
        raise AssertionError("accepted an unknown second_copy site")


def test_status_refuses_bad_input_with_one_line(cli: Cli, tmp_path: Path) -> None:
    missing = cli("status", "--config", str(tmp_path / "nope.yaml"))
    assert (
        missing.returncode == 2 and missing.stderr.count("\n") == 1 and "configuration file not found" in missing.stderr
    )
    bare = cli("status")
    assert bare.returncode == 2 and "--config" in bare.stderr


def test_status_of_a_consortium_that_never_failed_over(lab_factory: Callable[..., Lab], cli: Cli) -> None:
    lab = lab_factory(TWO_SYSTEMS)
    done = cli("status", "--config", str(lab.config_path), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["active_site"], doc["failed_over"], doc["since"], doc["run_id"]) == ("primary", False, None, None)
    assert doc["second_copy"]["sites"] == ["offsite"] and doc["warnings"] == []
    assert [s["light"]["criteria"][0]["name"] for s in doc["systems"]] == ["offsite", "offsite"]
    human = cli("status", "--config", str(lab.config_path))
    assert "稼働サイト / active site: primary" in human.stdout and "構成どおり / as configured" in human.stdout
