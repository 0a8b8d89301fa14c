"""Job planning as pure functions of the configuration: triggers, intervals, grace times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dc.config import load_config, parse_config
from monitoring.errors import ScheduleError
from monitoring.schedule import (
    ANCHOR,
    MAX_GRACE,
    JobSpec,
    backup_interval,
    grid_offset,
    interval_trigger,
    parse_schedule,
    plan_jobs,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
ALL = ("backup", "check", "health", "replicate", "drill")


def test_backup_interval_is_half_the_rpo_so_backup_and_replication_fit_inside_it() -> None:
    assert backup_interval(900) == 450
    assert backup_interval(3600) == 1800
    assert backup_interval(1) == 1
    assert backup_interval(None) == 86400


@pytest.mark.parametrize(
    ("text", "kind", "interval"),
    [
        ("30s", IntervalTrigger, 30),
        ("15m", IntervalTrigger, 900),
        ("1h30m", IntervalTrigger, 5400),
        ("*/5 * * * *", CronTrigger, 300),
        ("30 2 * * *", CronTrigger, 86400),
        ("0 3 * * sun", CronTrigger, 7 * 86400),
    ],
)
def test_parse_schedule_accepts_durations_and_cron(text: str, kind: type, interval: float) -> None:
    trigger, nominal = parse_schedule(text, "job", "schedules.x", UTC)
    assert isinstance(trigger, kind)
    assert nominal == interval


@pytest.mark.parametrize("text", ["every day", "61 * * * *", "0s", "* * *"])
def test_bad_schedule_names_the_field(text: str) -> None:
    with pytest.raises(ScheduleError, match=r"^systems\.goka-juki\.schedule: "):
        parse_schedule(text, "backup:goka-juki", "systems.goka-juki.schedule", UTC)


def test_interval_jobs_sit_on_a_stable_grid_shifted_per_job() -> None:
    trigger = interval_trigger("backup:goka-juki", 450)
    now = datetime(2026, 3, 11, 14, 46, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None and now <= fire < now + timedelta(seconds=450)
    offset = grid_offset("backup:goka-juki", 450)
    assert (fire - ANCHOR).total_seconds() % 450 == offset
    # Rebuilding the trigger (a restart, a new leader) gives the same time.
    assert interval_trigger("backup:goka-juki", 450).get_next_fire_time(None, now) == fire
    assert repr(interval_trigger("backup:goka-juki", 450)) == repr(trigger)


def test_offsets_spread_many_systems_with_the_same_rpo() -> None:
    offsets = {grid_offset(f"backup:sys-{i:03d}", 450) for i in range(132)}
    assert len(offsets) > 100  # not a thundering herd at :00


def test_plan_for_the_example_consortium() -> None:
    config, _ = load_config(EXAMPLE)
    jobs = {job.job_id: job for job in plan_jobs(config, ALL, UTC)}
    backups = [job for job in jobs.values() if job.kind == "backup"]
    assert len(backups) == len(config.systems) == 168  # 42 systems (the 33 業務) x 4 towns
    juki = jobs["backup:goka-juki"]
    assert (juki.tenant, juki.system, juki.site) == ("goka", "goka-juki", "primary")
    assert juki.interval == 450  # 15m RPO, no schedule given
    assert jobs["backup:kasumigaura-gaiji"].interval == 43200  # 24h RPO
    assert {"check:primary", "check:offsite", "replicate:offsite", "health", "drill"} <= set(jobs)
    assert "replicate:primary" not in jobs
    assert jobs["check:primary"].interval == 86400
    assert jobs["drill"].misfire_grace == MAX_GRACE  # weekly, capped at 6 h
    assert jobs["health"].misfire_grace == 60


def test_plan_only_schedules_kinds_this_build_can_run() -> None:
    config, _ = load_config(EXAMPLE)
    kinds = {job.kind for job in plan_jobs(config, ("backup", "health"), UTC)}
    assert kinds == {"backup", "health"}


def test_system_schedule_beats_consortium_schedule_beats_rpo() -> None:
    raw = {
        "consortium": "c",
        "sites": {"p": {"prefecture": "茨城県", "repository": "/x"}},
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            "own": {
                "tenant": "goka",
                "business": "b",
                "tier": 1,
                "rpo": "1h",
                "schedule": "10m",
                "source": {"kind": "path", "path": "/d"},
            },
            "shared": {
                "tenant": "goka",
                "business": "b",
                "tier": 1,
                "rpo": "1h",
                "source": {"kind": "path", "path": "/d"},
            },
        },
        "schedules": {"backup": "*/20 * * * *", "check": None, "health": None, "replicate": None, "drill": None},
    }
    jobs = {job.job_id: job for job in plan_jobs(parse_config(raw), ALL, UTC)}
    assert set(jobs) == {"backup:own", "backup:shared"}
    assert jobs["backup:own"].interval == 600
    assert isinstance(jobs["backup:shared"].trigger, CronTrigger)
    assert jobs["backup:shared"].interval == 1200


def test_misfire_grace_is_about_one_interval() -> None:
    trigger = interval_trigger("j", 30)
    assert JobSpec("j", "backup", trigger, 30).misfire_grace == 30
    assert JobSpec("j", "backup", trigger, 0.5).misfire_grace == 1
    assert JobSpec("j", "backup", trigger, 86400).misfire_grace == MAX_GRACE


def test_the_control_state_ships_on_its_own_only_when_replication_is_rarer_than_its_rpo() -> None:
    from monitoring.schedule import control_interval

    config, _ = load_config(EXAMPLE)
    kinds = (*ALL, "control")
    assert not [j for j in plan_jobs(config, kinds, UTC) if j.kind == "control"]  # */5 replication, 15m RPO
    hourly = config.model_copy(update={"schedules": config.schedules.model_copy(update={"replicate": "0 * * * *"})})
    (job,) = [j for j in plan_jobs(hourly, kinds, UTC) if j.kind == "control"]
    assert (job.job_id, job.site, job.interval) == ("control:offsite", "offsite", 450)
    never = config.model_copy(update={"schedules": config.schedules.model_copy(update={"replicate": None})})
    assert not [j for j in plan_jobs(never, kinds, UTC) if j.kind == "control"], "shipping is a replication"
    assert control_interval(900, 300) is None and control_interval(900, 3600) == 450
    assert control_interval(1, 60) == 1 and control_interval(900, None) is None
