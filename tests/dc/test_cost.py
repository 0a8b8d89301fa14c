"""The cost split: exact yen, the reference consortium's figures, the population/resource mix."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dc.apportion import controlled_rounding, largest_remainder
from dc.config import load_config
from dc.cost import TenantUsage, month_portion, parse_costs, split_costs
from dc.errors import ConfigError, UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"

#: the four municipalities of the reference consortium, populations as of H25.4.1 (seed slides)
IBARAKI = {
    "hitachiomiya": ("常陸大宮市", 43695),
    "naka": ("那珂市", 55986),
    "kasumigaura": ("かすみがうら市", 44217),
    "goka": ("五霞町", 9376),
}
#: 28,700万円 split by population: floor of each exact quota, the one yen left to 五霞町
#: (largest remainder, 0.58 yen); 287,000,000 x 43,695 / 153,274 = 81,817,301.04 and so on.
REFERENCE_YEN = {"hitachiomiya": 81_817_301, "naka": 104_831_752, "kasumigaura": 82_794_727, "goka": 17_556_220}


def test_reference_consortium_split_by_population() -> None:
    costs = parse_costs({"items": [{"category": "クラウド移行後", "yen": 287_000_000}], "baseline_yen": 417_000_000})
    split = split_costs(costs, IBARAKI)
    assert {t.tenant: t.yen for t in split.tenants} == REFERENCE_YEN
    assert split.total_yen == sum(REFERENCE_YEN.values()) == 287_000_000
    assert split.saving_yen == 130_000_000 and split.saving_pct == 31.2  # "３１％削減（１３,０００万円削減）"
    assert [t.population_share for t in split.tenants] == pytest.approx([0.285078, 0.365267, 0.288483, 0.061171])


def test_example_configuration_reproduces_the_reference_split_across_categories() -> None:
    config, path = load_config(EXAMPLE)
    costs = parse_costs(config.costs, str(path))
    categories = {item.category for item in costs.items}
    for expected in ("データセンター利用料", "ハードウェア費", "運用・保守費", "通信回線費", "帳票アウトソーシング費"):
        assert expected in categories
    assert any("ソフトウェア費" in c and "パッケージシステム料" in c for c in categories)
    tenants = {tid: (t.name, t.population) for tid, t in config.tenants.items()}
    split = split_costs(costs, tenants)
    # each tenant's bill equals the one-step split of the total, however the categories are cut
    assert {t.tenant: t.yen for t in split.tenants} == REFERENCE_YEN
    assert split.baseline_yen == 417_000_000 and split.saving_pct == 31.2
    for category in split.categories:
        assert sum(t.by_category[category["category"]] for t in split.tenants) == category["yen"]
    assert split.resource_basis.startswith("population")


def test_measured_use_shifts_the_resource_part_only() -> None:
    costs = parse_costs(
        {
            "population_weight": 0.5,
            "resource_weights": {"repository_bytes": 1.0},
            "items": [{"category": "データセンター利用料", "yen": 1_000_000}],
        }
    )
    tenants = {"a": ("A町", 100), "b": ("B町", 300)}
    usage = {"a": TenantUsage(repository_bytes=3_000), "b": TenantUsage(repository_bytes=1_000)}
    split = split_costs(costs, tenants, usage)
    a, b = split.tenants
    assert (a.population_share, a.resource_share) == (0.25, 0.75)
    # half by population (125,000 + 375,000), half by bytes (375,000 + 125,000)
    assert (a.yen, b.yen) == (500_000, 500_000)
    assert split.resource_basis == "measured"


def test_an_unmeasured_resource_does_not_zero_the_others() -> None:
    costs = parse_costs(
        {
            "population_weight": 0.0,
            "resource_weights": {"repository_bytes": 0.5, "drill_seconds": 0.5},
            "items": [{"category": "x", "yen": 900}],
        }
    )
    tenants = {"a": ("A", 1), "b": ("B", 1), "c": ("C", 1)}
    usage = {"a": TenantUsage(repository_bytes=2), "b": TenantUsage(repository_bytes=1)}  # no drills yet
    split = split_costs(costs, tenants, usage)
    assert [t.yen for t in split.tenants] == [600, 300, 0]


def test_a_month_gets_its_portion_of_the_term_and_the_term_adds_up() -> None:
    config, path = load_config(EXAMPLE)
    costs = parse_costs(config.costs, str(path))
    tenants = {tid: (t.name, t.population) for tid, t in config.tenants.items()}
    months = [f"{2015 + i // 12}-{i % 12 + 1:02d}" for i in range(60)]
    totals = [split_costs(costs, tenants, period=m).total_yen for m in months]
    assert sum(totals) == 287_000_000
    assert max(totals) - min(totals) <= len(costs.items)  # each category's months differ by at most 1 yen
    split = split_costs(costs, tenants, period="2016-03")
    assert sum(t.yen for t in split.tenants) == split.total_yen == totals[14]
    with pytest.raises(UsageError, match="outside the cost term"):
        split_costs(costs, tenants, period="2020-01")
    with pytest.raises(UsageError, match="invalid period"):
        split_costs(costs, tenants, period="2016-13")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "costs: section missing"),
        ({"items": []}, "costs.items: List should have at least 1 item"),
        ({"items": [{"category": "x", "yen": -1}]}, "costs.items.0.yen"),
        ({"items": [{"category": "x", "yen": 1, "population_weight": 1.5}]}, "costs.items.0.population_weight"),
        ({"items": [{"category": "x", "yen": 1}, {"category": "x", "yen": 2}]}, "category listed twice: x"),
        ({"resource_weights": {"cpu": 1.0}, "items": [{"category": "x", "yen": 1}]}, "unknown measure 'cpu'"),
        ({"items": [{"category": "x", "yen": 1}], "extra": 1}, "costs.extra: Extra inputs"),
    ],
)
def test_bad_costs_sections_are_named(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_costs(raw, "f.yaml")


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(any))
def test_largest_remainder_sums_exactly_and_stays_within_a_yen(total: int, weights: list[int]) -> None:
    parts = largest_remainder(total, [Fraction(w) for w in weights])
    assert sum(parts) == total
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * w, sum(weights))) < 1


@given(
    st.lists(st.integers(0, 10**9), min_size=1, max_size=8),
    st.lists(st.lists(st.integers(1, 1000), min_size=8, max_size=8), min_size=1, max_size=10),
)
def test_controlled_rounding_keeps_both_sums_exact(columns: list[int], weight_rows: list[list[int]]) -> None:
    quotas = [[Fraction(0)] * len(columns) for _ in weight_rows]
    for c, total in enumerate(columns):
        weight_sum = sum(row[c] for row in weight_rows)
        for r, row in enumerate(weight_rows):
            quotas[r][c] = Fraction(total * row[c], weight_sum)
    cells = controlled_rounding(quotas, columns)
    for c, total in enumerate(columns):
        assert sum(row[c] for row in cells) == total
    exact_rows = [sum(row, Fraction(0)) for row in quotas]
    assert [sum(row) for row in cells] == largest_remainder(sum(columns), exact_rows) if sum(columns) else True
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            assert quotas[r][c] - 1 < value < quotas[r][c] + 1


def test_month_portions_add_up() -> None:
    assert sum(month_portion(1_000_003, 12, i) for i in range(12)) == 1_000_003


def test_cli_cost_split_json(cli, example_config: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("dc", "cost-split", "--config", str(example_config), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["total_yen"] == 287_000_000
    assert {t["tenant"]: t["yen"] for t in data["tenants"]} == REFERENCE_YEN
    assert set(data["tenants"][0]) >= {"tenant", "population_share", "resource_share", "yen"}
    month = json.loads(cli("dc", "cost-split", "--config", str(example_config), "--period", "2015-01", "--json").stdout)
    assert month["total_yen"] == sum(t["yen"] for t in month["tenants"]) < 287_000_000 // 59


def test_cli_cost_split_bad_section_exit_2(cli, tmp_path: Path, example_config: Path) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(example_config.read_text(encoding="utf-8"))
    raw["costs"]["items"][0]["yen"] = "a lot"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    proc = cli("dc", "cost-split", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"bcpctl: error: {path}: costs.items.0.yen:")
    assert proc.stdout == ""
