"""The traffic light's rules, as a pure function (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from failover.activesite import ActiveSite
from failover.protection import Copy, judge_protection
from monitoring.recoverability import GREEN, RED, YELLOW, DrillFact, judge

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = 86400
NORMAL = ActiveSite("primary", "primary", None, None, ("offsite",))
TOOK_OVER = NOW - timedelta(hours=2)
FAILED_OVER = ActiveSite("offsite", "primary", TOOK_OVER, "run-1", ("primary",))


def _light(
    offsite_age: float | None = 60,
    drills: list[DrillFact] | None = None,
    rpo: int | None = 900,
    rto: int | None = 4 * 3600,
):  # type: ignore[no-untyped-def]
    newest = None if offsite_age is None else NOW - timedelta(seconds=offsite_age)
    copies = [] if newest is None else [Copy("offsite", newest, NOW)]
    protection = judge_protection("goka-juki", rpo, copies, NORMAL, NOW)
    passed = [DrillFact("passed", NOW - timedelta(days=2), 1800.0, 4 * 3600)]
    return judge(
        protection=protection,
        active=NORMAL,
        rto=rto,
        drills=passed if drills is None else drills,
        fresh=30 * DAY,
        now=NOW,
    )


def test_all_three_facts_hold_is_green() -> None:
    light = _light()
    assert light.level == GREEN
    assert [c.level for c in light.criteria] == [GREEN, GREEN, GREEN]


@pytest.mark.parametrize(
    ("kwargs", "name", "level"),
    [
        ({"offsite_age": None}, "offsite", RED),
        ({"offsite_age": 901}, "offsite", RED),
        ({"rpo": None}, "offsite", YELLOW),
        ({"drills": []}, "drill", RED),
        (
            {
                "drills": [
                    DrillFact("passed", NOW - timedelta(days=3), 60.0, 14400),
                    DrillFact("failed", NOW, None, 14400),
                ]
            },
            "drill",
            RED,
        ),
        ({"drills": [DrillFact("passed", NOW - timedelta(days=31), 60.0, 14400)]}, "drill", YELLOW),
        ({"drills": [DrillFact("passed", NOW - timedelta(days=1), 5 * 3600.0, 14400)]}, "rto", YELLOW),
        ({"drills": [DrillFact("passed", NOW - timedelta(days=1), None, None)]}, "rto", YELLOW),
        ({"rto": None}, "rto", YELLOW),
    ],
)
def test_each_failing_fact_sets_the_light(kwargs, name: str, level: str) -> None:  # type: ignore[no-untyped-def]
    light = _light(**kwargs)
    criterion = next(c for c in light.criteria if c.name == name)
    assert criterion.level == level
    assert light.level == level
    assert " / " in criterion.text  # Japanese, then English


def test_rto_comes_from_the_newest_drill_that_measured_it() -> None:
    drills = [
        DrillFact("passed", NOW - timedelta(days=5), 600.0, 14400),
        DrillFact("passed", NOW - timedelta(days=1), None, 14400),
    ]
    light = _light(drills=drills)
    assert light.level == GREEN and "RTO 10m" in light.criteria[2].text


def test_failed_over_without_a_second_copy_is_red_unprotected_and_says_where_it_should_go() -> None:
    passed = [DrillFact("passed", NOW - timedelta(days=2), 1800.0, 4 * 3600)]
    # The offsite held a fresh copy before the failover: it is where production runs now, not a second copy.
    protection = judge_protection("goka-juki", 900, [], FAILED_OVER, NOW)
    light = judge(protection=protection, active=FAILED_OVER, rto=14400, drills=passed, fresh=30 * DAY, now=NOW)
    first = light.criteria[0]
    assert light.level == RED and (first.name, first.level) == ("second_copy", RED)
    assert "unprotected" in first.text and "primary" in first.text and "offsite" in first.text
    # A copy replicated to the primary since the failover, within the RPO: protected again.
    shipped = judge_protection("goka-juki", 900, [Copy("primary", NOW - timedelta(minutes=5), NOW)], FAILED_OVER, NOW)
    again = judge(protection=shipped, active=FAILED_OVER, rto=14400, drills=passed, fresh=30 * DAY, now=NOW)
    assert again.level == GREEN and shipped.protected and shipped.site == "primary"
    stale = judge_protection("goka-juki", 900, [Copy("primary", NOW - timedelta(hours=1), NOW)], FAILED_OVER, NOW)
    assert stale.state == "stale" and "unprotected" in stale.reason


def test_no_site_for_a_second_copy_is_unprotected() -> None:
    alone = ActiveSite("offsite", "primary", TOOK_OVER, "run-1", ())
    found = judge_protection("goka-juki", 900, [], alone, NOW)
    assert found.state == "missing" and "no site is configured" in found.reason
