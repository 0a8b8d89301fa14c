"""Retention is a pure function: tested with fixed clocks, no repository."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.retention import _BUCKETS, UNLIMITED, Candidate, RetentionPolicy, apply_policy
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


# -- validation: a typo never widens what is removed ---------------------------------------


@pytest.mark.parametrize("field", ["last", "hourly", "daily", "weekly", "monthly", "yearly"])
@pytest.mark.parametrize("value", [-2, -5, -(10**30)])
def test_negative_counts_are_refused(field: str, value: int) -> None:
    with pytest.raises(UsageError, match="negative"):
        RetentionPolicy(**{field: value})


@pytest.mark.parametrize("seconds", [-1, 10**30])
def test_keep_within_out_of_range_is_refused(seconds: int) -> None:
    with pytest.raises(UsageError, match="keep-within"):
        RetentionPolicy(within_seconds=seconds)


def test_unlimited_keeps_every_snapshot() -> None:
    decisions = apply_policy(hourly_snapshots(100), RetentionPolicy(last=UNLIMITED), now=NOW)
    assert all(d.keep for d in decisions)
    daily = apply_policy(hourly_snapshots(24 * 9), RetentionPolicy(daily=UNLIMITED), now=NOW, tz=JST)
    assert sum("daily" in d.reasons for d in daily) == 10  # 216 hours from 12:00 UTC touch 10 JST days


def test_the_newest_snapshot_survives_a_window_that_holds_none() -> None:
    # Backups of this system stopped three days ago; keep-within 1d must not remove the last one.
    stale = [Candidate(f"s{i}", NOW - timedelta(days=3, hours=i), "goka-juki") for i in range(5)]
    decisions = apply_policy(stale, RetentionPolicy(within_seconds=86400), now=NOW)
    assert kept(decisions) == {"s0"} and decisions[0].reasons == ["newest"]
    emptied = apply_policy(stale, RetentionPolicy(within_seconds=86400), now=NOW, allow_empty=True)
    assert kept(emptied) == set()


# -- properties over any snapshot set and any policy -----------------------------------------

_count = st.one_of(st.just(0), st.just(UNLIMITED), st.integers(1, 30))
_policies = st.builds(
    RetentionPolicy,
    last=_count,
    hourly=_count,
    daily=_count,
    weekly=_count,
    monthly=_count,
    yearly=_count,
    within_seconds=st.one_of(st.just(0), st.integers(1, 400 * 86400)),
).filter(lambda p: not p.empty)
_snapshots = st.lists(
    st.builds(
        Candidate,
        id=st.text("0123456789abcdef", min_size=8, max_size=8),
        time=st.integers(0, 3 * 365 * 86400).map(lambda s: NOW - timedelta(seconds=s)),
        group=st.sampled_from(["goka-juki", "naka-tax", "kasumi-welfare"]),
    ),
    max_size=60,
    unique_by=lambda c: c.id,
)
_settings = settings(max_examples=200, derandomize=True, deadline=None)


def _newest_per_group(snaps: list[Candidate]) -> set[str]:
    newest: dict[str, Candidate] = {}
    for s in snaps:
        if s.group not in newest or (s.time, s.id) > (newest[s.group].time, newest[s.group].id):
            newest[s.group] = s
    return {s.id for s in newest.values()}


@_settings
@given(_snapshots, _policies)
def test_property_every_snapshot_decided_once_and_newest_kept(snaps: list[Candidate], policy: RetentionPolicy) -> None:
    decisions = apply_policy(snaps, policy, now=NOW, tz=JST)
    assert sorted(d.id for d in decisions) == sorted(s.id for s in snaps)
    assert _newest_per_group(snaps) <= kept(decisions)
    assert all(bool(d.reasons) == d.keep for d in decisions)


@_settings
@given(_snapshots, st.integers(1, 80))
def test_property_keep_last_keeps_exactly_the_n_newest(snaps: list[Candidate], n: int) -> None:
    decisions = apply_policy(snaps, RetentionPolicy(last=n), now=NOW)
    for group in {s.group for s in snaps}:
        members = sorted((s for s in snaps if s.group == group), key=lambda s: (s.time, s.id), reverse=True)
        assert {d.id for d in decisions if d.keep and d.group == group} == {s.id for s in members[:n]}


@_settings
@given(_snapshots, _policies, st.randoms(use_true_random=False))
def test_property_input_order_does_not_matter(snaps: list[Candidate], policy: RetentionPolicy, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(snaps)
    rnd.shuffle(shuffled)
    assert kept(apply_policy(snaps, policy, now=NOW, tz=JST)) == kept(apply_policy(shuffled, policy, now=NOW, tz=JST))


@_settings
@given(_snapshots, _policies, st.sampled_from(["last", "hourly", "daily", "weekly", "monthly", "yearly"]))
def test_property_a_larger_count_never_removes_more(snaps: list[Candidate], policy: RetentionPolicy, rule: str) -> None:
    current = getattr(policy, rule)
    larger = replace(policy, **{rule: UNLIMITED if current in (UNLIMITED, 30) else current + 1})
    assert kept(apply_policy(snaps, policy, now=NOW, tz=JST)) <= kept(apply_policy(snaps, larger, now=NOW, tz=JST))


@_settings
@given(_snapshots, st.sampled_from(["hourly", "daily", "weekly", "monthly", "yearly"]), st.integers(1, 20))
def test_property_bucket_rules_keep_one_per_bucket_up_to_n(snaps: list[Candidate], rule: str, n: int) -> None:
    decisions = apply_policy(snaps, RetentionPolicy(**{rule: n}), now=NOW, tz=JST)
    for group in {s.group for s in snaps}:
        by_rule = [d for d in decisions if d.group == group and rule in d.reasons]
        buckets = {dict(_BUCKETS)[rule](s.time.astimezone(JST)) for s in snaps if s.group == group}
        assert len(by_rule) == min(n, len(buckets))
        assert len({dict(_BUCKETS)[rule](d.time.astimezone(JST)) for d in by_rule}) == len(by_rule)
