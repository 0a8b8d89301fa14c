"""The traffic light's rules, as a pure function (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bcpctl.web.recoverability import GREEN, RED, YELLOW, DrillFact, judge

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = 86400


def _light(
    offsite_age: float | None = 60,
    drills: list[DrillFact] | None = None,
    rpo: int | None = 900,
    rto: int | None = 4 * 3600,
):  # type: ignore[no-untyped-def]
    newest = None if offsite_age is None else NOW - timedelta(seconds=offsite_age)
    passed = [DrillFact("passed", NOW - timedelta(days=2), 1800.0, 4 * 3600)]
    return judge(
        rpo=rpo, rto=rto, offsite_newest=newest, drills=passed if drills is None else drills, fresh=30 * DAY, now=NOW
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
