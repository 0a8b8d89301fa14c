"""Retention is a pure function: tested with fixed clocks, no repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backup.retention import Candidate, RetentionPolicy, apply_policy
from dc.errors import UsageError

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def hourly_snapshots(hours: int, group: str = "goka-juki") -> list[Candidate]:
    return [Candidate(f"{group}-{i:04d}", NOW - timedelta(hours=i), group) for i in range(hours)]


def kept(decisions) -> set[str]:  # type: ignore[no-untyped-def]
    return {d.id for d in decisions if d.keep}


def test_keep_last() -> None:
    decisions = apply_policy(hourly_snapshots(10), RetentionPolicy(last=3), now=NOW)
    assert kept(decisions) == {"goka-juki-0000", "goka-juki-0001", "goka-juki-0002"}


def test_keep_daily_uses_local_days() -> None:
    # 72 hourly snapshots span 4 JST days; keep-daily 2 keeps the newest of each of the 2 newest days.
    decisions = apply_policy(hourly_snapshots(72), RetentionPolicy(daily=2), now=NOW, tz=JST)
    kept_times = sorted((d.time.astimezone(JST) for d in decisions if d.keep), reverse=True)
    assert len(kept_times) == 2
    assert kept_times[0] == NOW.astimezone(JST)
    assert kept_times[1].date() == (NOW.astimezone(JST) - timedelta(days=1)).date()
    assert kept_times[1].hour == 23


def test_rules_combine_and_report_reasons() -> None:
    decisions = apply_policy(hourly_snapshots(24 * 40), RetentionPolicy(last=2, daily=7, weekly=4, monthly=2), now=NOW)
    newest = next(d for d in decisions if d.id == "goka-juki-0000")
    assert set(newest.reasons) == {"last", "daily", "weekly", "monthly"}
    assert len(kept(decisions)) <= 2 + 7 + 4 + 2


def test_groups_are_independent() -> None:
    snaps = hourly_snapshots(5, "a") + hourly_snapshots(5, "b")
    assert len(kept(apply_policy(snaps, RetentionPolicy(last=1), now=NOW))) == 2


def test_keep_within_resists_junk_snapshots() -> None:
    real = hourly_snapshots(48)
    junk = [Candidate(f"junk-{i}", NOW - timedelta(seconds=i), "goka-juki") for i in range(100)]
    decisions = apply_policy(real + junk, RetentionPolicy(last=10, within_seconds=24 * 3600), now=NOW)
    assert {f"goka-juki-{i:04d}" for i in range(24)} <= kept(decisions)


def test_empty_policy_is_refused() -> None:
    with pytest.raises(UsageError):
        apply_policy(hourly_snapshots(3), RetentionPolicy(), now=NOW)
