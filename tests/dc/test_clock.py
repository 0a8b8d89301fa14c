"""What people read is JST, labelled, on the JST calendar day; machines keep ISO 8601 with an offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from dc.clock import JST, NO_TIME, jst_day, jst_text

#: the two instants where UTC's calendar day is the day before JST's (the trap this rule closes)
HALF_PAST_MIDNIGHT = datetime(2026, 12, 13, 0, 30, tzinfo=JST)
BEFORE_NINE = datetime(2026, 12, 13, 8, 59, tzinfo=JST)


def test_pinned_clocks_render_the_jst_date() -> None:
    for when, shown in ((HALF_PAST_MIDNIGHT, "2026-12-13 00:30 JST"), (BEFORE_NINE, "2026-12-13 08:59 JST")):
        utc = when.astimezone(UTC)
        assert utc.date().isoformat() == "2026-12-12", "the pinned times lie on the day before in UTC"
        assert jst_text(utc) == shown
        assert jst_text(utc.isoformat()) == shown, "the ISO text of a JSON document renders the same"
        assert jst_text(utc.replace(tzinfo=None)) == shown, "a naive stored time is UTC"
    assert jst_text(BEFORE_NINE.astimezone(UTC), seconds=True) == "2026-12-13 08:59:00 JST"


def test_the_policy_day_is_the_jst_day_at_the_pinned_clocks() -> None:
    for when in (HALF_PAST_MIDNIGHT, BEFORE_NINE):
        utc = when.astimezone(UTC)
        assert jst_day(utc) == jst_day(utc.replace(tzinfo=None)) == when.date() != utc.date()


def test_nothing_is_a_dash() -> None:
    assert jst_text(None) == jst_text("") == NO_TIME


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_any_offset_shows_the_same_jst_wall_clock(naive: datetime, offset_minutes: int) -> None:
    when = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    shown = jst_text(when)
    expected = when.astimezone(JST)
    assert shown == f"{expected:%Y-%m-%d %H:%M} JST"
    assert jst_text(when.isoformat()) == shown
    assert jst_day(when).isoformat() == shown[:10], "the day a policy judges by is the day a person reads"
