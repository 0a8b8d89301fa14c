"""後乗り mid-year: a 年度's bills by each town's months — exact yen, nobody pays for months before it joined."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.apportion import round_quotas
from dc.config import load_config, parse_config
from dc.cost import CostsConfig, TenantUsage, parse_costs
from dc.errors import ConfigError, UsageError
from dc.proration import (
    capped_largest_remainder,
    fiscal_months,
    fiscal_year_of,
    parse_fiscal_year,
    parse_start,
    prorate_fiscal_year,
    without_town,
)
from tests.conftest import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
MEMBERS = {"hitachiomiya": ("常陸大宮市", 43695), "naka": ("那珂市", 55986), "kasumigaura": ("かすみがうら市", 44217)}


def _example_costs() -> tuple[CostsConfig, dict[str, tuple[str, int]]]:
    config, path = load_config(EXAMPLE)
    costs = parse_costs(config.costs, str(path), config.tenants)
    return costs, {t: (x.name, x.population) for t, x in config.tenants.items()}


def test_the_fiscal_year_runs_april_to_march_in_jst() -> None:
    assert fiscal_year_of(date(2027, 10, 1)) == 2027 and fiscal_year_of(date(2028, 3, 31)) == 2027
    assert fiscal_year_of(date(2028, 4, 1)) == 2028
    months = fiscal_months(2027)
    assert months[0] == date(2027, 4, 1) and months[-1] == date(2028, 3, 1) and len(months) == 12
    for bad in ("2027-10", "2027/10/01", "2027-02-30", "27-10-01", "2027-10-01T00:00"):
        with pytest.raises(UsageError):
            parse_start(bad)
    for bad in ("27", "2027-28", "１９９９", "0000"):
        with pytest.raises(UsageError):
            parse_fiscal_year(bad)


def test_a_town_joining_in_october_pays_six_months_and_every_member_pays_less_that_year() -> None:
    costs, tenants = _example_costs()
    joined = costs.with_joiner(24_000)
    year = prorate_fiscal_year(joined, {**tenants, "sakai": ("境町", 24_000)}, {"sakai": date(2027, 10, 15)}, 2027)
    bills = {b.tenant: b for b in year.tenants}
    assert year.start.isoformat() == "2027-04-01T00:00:00+09:00" and year.end.isoformat() == "2028-04-01T00:00:00+09:00"
    assert sum(b.yen for b in year.tenants) == year.total_yen == sum(m["yen"] for m in year.months)  # type: ignore[misc]
    sakai = bills["sakai"]
    assert sakai.joiner and sakai.months == 6 and sakai.billed_from is not None
    assert sakai.billed_from.isoformat() == "2027-10-01T00:00:00+09:00", "it pays from the month it starts"
    assert all("sakai" not in m["tenants"] for m in year.months[:6])  # type: ignore[operator]
    assert all("sakai" in m["tenants"] for m in year.months[6:])  # type: ignore[operator]
    # the year's contract: six months without the joiner's additions, six with them
    term_months = costs.term.years * 12
    assert year.total_yen == pytest.approx(
        costs.after_total * 6 / term_months + joined.after_total * 6 / term_months, abs=12
    )
    for t in tenants:
        assert bills[t].months == 12 and not bills[t].joiner
        assert bills[t].change_yen is not None and bills[t].change_yen < 0, "the example's contract: 割り勘効果"
    alone = prorate_fiscal_year(costs, tenants, {}, 2027)
    assert {b.tenant: b.yen for b in alone.tenants} == {t: bills[t].without_joiners_yen for t in tenants}
    assert year.beyond_term, "2027 is past the example's 2014-01 + 5 years: its amounts repeat"


def test_a_town_starting_after_the_year_pays_nothing_and_one_in_from_before_is_a_member() -> None:
    costs, tenants = _example_costs()
    joined = costs.with_joiner(24_000)
    everyone = {**tenants, "sakai": ("境町", 24_000)}
    later = prorate_fiscal_year(joined, everyone, {"sakai": date(2028, 4, 1)}, 2027)
    sakai = next(b for b in later.tenants if b.tenant == "sakai")
    assert sakai.months == 0 and sakai.yen == 0 and sakai.billed_from is None
    assert later.total_yen == prorate_fiscal_year(costs, tenants, {}, 2027).total_yen
    earlier = prorate_fiscal_year(joined, everyone, {"sakai": date(2027, 4, 1)}, 2027)
    assert all(b.months == 12 and not b.joiner for b in earlier.tenants)


def test_members_never_pay_more_caps_them_and_the_joiner_carries_the_rest() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for item in raw["costs"]["after"]["items"]:
        item["per_resident_yen"] = 5_000  # a joiner far dearer than the average resident
    tenants = {t: (x["name"], x["population"]) for t, x in raw["tenants"].items()}
    everyone = {**tenants, "sakai": ("境町", 24_000)}
    starts = {"sakai": date(2027, 10, 1)}
    plain = parse_costs(raw["costs"]).with_joiner(24_000)
    uncapped = prorate_fiscal_year(plain, everyone, starts, 2027)
    assert all(b.change_yen > 0 for b in uncapped.tenants if b.change_yen is not None), "the rule lets them rise"
    raw["costs"]["joining"] = {"members_never_pay_more": True}
    capped = prorate_fiscal_year(parse_costs(raw["costs"]).with_joiner(24_000), everyone, starts, 2027)
    assert capped.members_never_pay_more and capped.total_yen == uncapped.total_yen
    assert all(b.change_yen == 0 for b in capped.tenants if not b.joiner)
    assert sum(b.yen for b in capped.tenants) == capped.total_yen


def test_a_contract_smaller_than_a_joiners_additions_is_a_config_error() -> None:
    costs, _ = _example_costs()
    assert without_town(costs.with_joiner(24_000), 24_000) == costs
    with pytest.raises(ConfigError, match="smaller than what a town of 1000000 adds"):
        without_town(costs, 1_000_000)


def test_a_bad_joined_date_in_the_configuration_is_a_config_error() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["tenants"]["goka"]["joined"] = "2027-13-01"
    with pytest.raises(ConfigError, match=r"tenants\.goka\.joined"):
        parse_config(raw)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.integers(0, 10**7),
    st.lists(
        st.tuples(st.integers(0, 10), st.none() | st.tuples(st.fractions(0, 1, max_denominator=7), st.integers(0, 3))),
        min_size=1,
        max_size=6,
    ),
)
def test_capped_rounding_sums_exactly_and_keeps_every_cap(
    total: int, rows: list[tuple[int, tuple[Fraction, int] | None]]
) -> None:
    weights = [w for w, _ in rows]
    if not sum(weights):
        weights[0] = 1
    quotas = [Fraction(total * w, sum(weights)) for w in weights]
    caps: list[tuple[Fraction, int] | None] = []
    for q, cap in zip(quotas, (c for _, c in rows), strict=True):
        # a cap: at most the quota exactly, and a whole-yen bound at or above its floor
        caps.append(None if cap is None else (q * cap[0], int(q * cap[0]) + cap[1]))
    held = sum((q - c[0] for q, c in zip(quotas, caps, strict=True) if c is not None), Fraction(0))
    takers = [q for q, c in zip(quotas, caps, strict=True) if c is None and q > 0]
    if held and not takers:
        with pytest.raises(ValueError, match="nobody uncapped"):
            capped_largest_remainder(total, quotas, caps)
        return
    parts = capped_largest_remainder(total, quotas, caps)
    assert sum(parts) == total and min(parts) >= 0
    for part, cap in zip(parts, caps, strict=True):
        assert cap is None or part <= cap[1]
    if not any(caps):
        assert parts == round_quotas(quotas, total), "without caps: plain largest remainder"


DAYS = st.dates(date(2026, 1, 1), date(2029, 6, 30))
RULES = st.fixed_dictionaries(
    {"equal": st.sampled_from([0, 0.5, 1]), "population": st.sampled_from([0, 1, 2]), "usage": st.sampled_from([0, 1])}
).filter(lambda r: sum(r.values()) > 0)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**7), st.integers(0, 3_000), st.none() | RULES),
        min_size=1,
        max_size=4,
    ),
    RULES,
    st.lists(st.tuples(st.integers(1, 2_000_000), st.none() | DAYS, st.integers(0, 10**9)), min_size=1, max_size=5),
    st.integers(2025, 2030),
    st.booleans(),
)
def test_the_year_adds_up_and_nobody_pays_for_months_before_joining(
    items: list[tuple[int, int, int, dict[str, float] | None]],
    rule: dict[str, float],
    towns: list[tuple[int, date | None, int]],
    fiscal_year: int,
    never_more: bool,
) -> None:
    costs = CostsConfig.model_validate(
        {
            "term": {"start": "2026-01", "years": 3},
            "rule": rule,
            "joining": {"members_never_pay_more": never_more},
            "after": {
                "items": [
                    {"category": f"c{i}", "yen": yen, "per_member_yen": member, "per_resident_yen": resident,
                     **({"rule": own} if own else {})}
                    for i, (yen, member, resident, own) in enumerate(items)
                ]
            },
        }
    )  # fmt: skip
    tenants = {f"t{i}": (f"町{i}", pop) for i, (pop, _, _) in enumerate(towns)}
    starts = {f"t{i}": day for i, (_, day, _) in enumerate(towns) if day is not None}
    usage = {f"t{i}": TenantUsage(repository_bytes=used) for i, (_, _, used) in enumerate(towns)}
    for t, (_, pop) in tenants.items():  # the contract with every town in it
        if t in starts:
            costs = costs.with_joiner(pop)
    year = prorate_fiscal_year(costs, tenants, starts, fiscal_year, usage)
    assert sum(b.yen for b in year.tenants) == year.total_yen == sum(m["yen"] for m in year.months), "to the yen"  # type: ignore[misc]
    assert all(b.yen >= 0 for b in year.tenants), "no negative amount"
    for b in year.tenants:
        present = [m for m in year.months if b.tenant in m["tenants"]]  # type: ignore[operator]
        assert b.months == len(present)
        if b.tenant in starts:
            first = date(starts[b.tenant].year, starts[b.tenant].month, 1)
            assert all(m["month"].date() >= first for m in present)  # type: ignore[attr-defined]
        # never more than the whole contract of its own months: it pays for none before it joined
        assert b.yen <= sum(m["yen"] for m in present)  # type: ignore[misc]
        if never_more and b.without_joiners_yen is not None:
            assert b.yen <= b.without_joiners_yen, "the agreement: no member pays more because a town joined"


def test_cli_plan_join_from_and_cost_split_fiscal_year(cli: Cli, example_config: Path, tmp_path: Path) -> None:
    config = str(example_config)
    assert cli("db", "upgrade", "--config", config).returncode == 0
    args = ("--config", config, "--name", "境町", "--lg-code", "085464", "--population", "24000", "--id", "sakai")
    args += ("--like", "goka", "--from", "2027-10-01")
    what_if = cli("tenant", "plan-join", *args, "--json")
    assert what_if.returncode == 0, what_if.stderr
    year = json.loads(what_if.stdout)["fiscal_year"]
    assert year["fiscal_year"] == 2027 and year["start"] == "2027-04-01T00:00:00+09:00"
    sakai = next(t for t in year["tenants"] if t["tenant"] == "sakai")
    assert sakai["months"] == 6 and sakai["billed_from"] == "2027-10-01T00:00:00+09:00"
    assert sum(t["yen"] for t in year["tenants"]) == year["total_yen"]
    told = cli("tenant", "plan-join", *args, env={"BCPCTL_LANG": "ja", "COLUMNS": "200"})
    assert told.returncode == 0 and "2027年度（2027-04-01〜2028-03-31 JST）" in told.stdout, told.stdout
    assert "負担開始" in told.stdout and "加入" in told.stdout and "2027-10-01" in told.stdout
    out = tmp_path / "joined.yaml"
    joined = cli("tenant", "join", *args, "--out", str(out), "--keys-dir", str(tmp_path / "keys"), "--json")
    assert joined.returncode == 0, joined.stderr
    text = out.read_text(encoding="utf-8")
    assert 'joined: "2027-10-01"' in text and "境町: 2027年10月から6か月" in text
    split = cli("dc", "cost-split", "--config", str(out), "--fiscal-year", "2027", "--json")
    assert split.returncode == 0, split.stderr
    assert json.loads(split.stdout)["fiscal_year"]["tenants"] == year["tenants"], "the agreement, then the bill"
    for bad in (("--from", "2027-10"), ("--from", "2027-02-30")):
        proc = cli("tenant", "plan-join", *args, *bad)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "YYYY-MM-DD" in proc.stderr
    proc = cli("dc", "cost-split", "--config", config, "--fiscal-year", "27")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
