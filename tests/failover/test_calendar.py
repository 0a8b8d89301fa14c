"""Blackouts, drill windows and the overdue flag, plus the drills: section's validation (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dc.clock import JST
from dc.config import parse_config
from dc.errors import ConfigError
from failover.calendar import blackout_on, next_drill_window, overdue_systems
from failover.settings import Blackout, drill_settings

BLACKOUTS = (
    Blackout(name="確定申告", start="02-01", end="03-31"),
    Blackout(name="年末年始", start="12-28", end="01-04"),
    Blackout(name="参議院議員通常選挙", start="2025-07-03", end="2025-07-21"),
)


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)  # type: ignore[misc]


def test_blackouts_recurring_wrapping_and_dated() -> None:
    assert blackout_on(jst(2026, 2, 1, 0, 0), BLACKOUTS).name == "確定申告"  # type: ignore[union-attr]
    assert blackout_on(jst(2026, 3, 31, 23, 59), BLACKOUTS).name == "確定申告"  # type: ignore[union-attr]
    assert blackout_on(jst(2026, 4, 1, 0, 0), BLACKOUTS) is None
    assert blackout_on(jst(2026, 1, 2, 9), BLACKOUTS).name == "年末年始"  # type: ignore[union-attr]
    assert blackout_on(jst(2025, 12, 30, 9), BLACKOUTS).name == "年末年始"  # type: ignore[union-attr]
    assert blackout_on(jst(2025, 7, 10, 9), BLACKOUTS).name == "参議院議員通常選挙"  # type: ignore[union-attr]
    assert blackout_on(jst(2026, 7, 10, 9), BLACKOUTS) is None, "a dated blackout does not recur"
    # 2026-01-31 16:00 UTC is already 2026-02-01 in Japan.
    assert blackout_on(datetime(2026, 1, 31, 16, 0, tzinfo=UTC), BLACKOUTS).name == "確定申告"  # type: ignore[union-attr]


def test_next_window_skips_to_the_first_free_day() -> None:
    free = jst(2026, 5, 10, 3)
    assert next_drill_window(free, BLACKOUTS) == free
    assert next_drill_window(jst(2026, 3, 15, 3), BLACKOUTS) == jst(2026, 4, 1, 0, 0)
    assert next_drill_window(jst(2025, 12, 29, 3), BLACKOUTS) == jst(2026, 1, 5, 0, 0)
    with pytest.raises(ValueError, match="every day"):
        next_drill_window(free, [Blackout(name="always", start="01-01", end="12-31")])


def test_overdue_flags_never_drilled_and_too_old() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    last = {"juki": now - timedelta(days=10), "zei": now - timedelta(days=40)}
    flagged = overdue_systems(["juki", "zei", "gaiji"], last, now, max_age=30 * 86400)
    assert [(o.system, o.age) for o in flagged] == [("zei", 40 * 86400.0), ("gaiji", None)]


def _drills(drills: dict) -> ConfigError | None:  # type: ignore[type-arg]
    config = parse_config(
        {
            "consortium": "t",
            "sites": {"primary": {"prefecture": "茨城県", "repository": "/r"}},
            "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
            "systems": {
                "juki": {"tenant": "goka", "business": "住基", "tier": 1, "source": {"kind": "path", "path": "/x"}}
            },
            "drills": drills,
        }
    )
    try:
        drill_settings(config, "bcpctl.yaml")
    except ConfigError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("drills", "message"),
    [
        (
            {"blackouts": [{"name": "x", "start": "02-30", "end": "03-01"}]},
            "drills.blackouts.0: blackout 'x': day is out of range",
        ),
        ({"blackouts": [{"name": "x", "start": "02-01", "end": "2026-03-01"}]}, "both be MM-DD"),
        ({"blackouts": [{"name": "x", "start": "2026-03-01", "end": "2026-02-01"}]}, "is before start"),
        ({"max_age": "soon"}, "drills.max_age: 'soon' is not a duration"),
        ({"workers": 0}, "drills.workers"),
        ({"failover": {"two_person": True}}, "two_person needs at least one entry"),
        ({"failover": {"approvers": {"sato": "hunter2"}}}, "token digests are no longer accepted"),
        ({"smoke_expect": {"nope": "1"}}, "drills.smoke_expect.nope: unknown system"),
        ({"steady_state": {"command": "true", "interval": 0}}, "drills.steady_state.interval"),
        ({"surprise": 1}, "drills.surprise"),
    ],
)
def test_bad_drills_sections_name_the_field(drills: dict, message: str) -> None:  # type: ignore[type-arg]
    error = _drills(drills)
    assert error is not None and message in str(error), error
    assert str(error).startswith("bcpctl.yaml: drills") and "\n" not in str(error)
    assert "hunter2" not in str(error)


def test_a_good_drills_section() -> None:
    assert (
        _drills(
            {
                "workers": 4,
                "max_age": "14d",
                "blackouts": [{"name": "確定申告", "start": "02-01", "end": "03-31"}],
                "failover": {"two_person": True, "approvers": ["sato"]},
            }
        )
        is None
    )


def test_the_example_drills_section_is_valid() -> None:
    from pathlib import Path

    from dc.config import load_config

    config, path = load_config(Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml")
    settings = drill_settings(config, str(path))
    assert [b.name for b in settings.blackouts][:2] == ["確定申告", "年度末・年度初めの異動"]
    assert settings.failover.two_person and settings.failover.hooks == "ansible"
    assert blackout_on(jst(2026, 2, 15, 3), settings.blackouts) is not None
