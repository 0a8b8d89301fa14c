"""The example consortium carries the seed's whole procurement list, and the plan orders it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bcpctl.demo.consortium import PLAN_TOWN, REPRESENTATIVE, demo_config
from bcpctl.demo.recovery import town_plan
from dc.config import load_config, parse_config
from failover.plan import build_plan, select_systems

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
#: 調達業務 № 1-33 of the seed's slide, with its sub-numbers, and the two extras ("-")
NUMBERS = [
    "1",
    "1-2",
    "2",
    "3",
    "3-2",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "11",
    "11-1",
    "11-2",
    "12",
    "13",
    "14-1",
    "14-2",
    "14-3",
    "14-4",
    "15",
    "16",
    "17",
    "18",
    "19",
    "20",
    "21",
    "22",
    "23",
    "24",
    "25",
    "26",
    "27",
    "28",
    "29",
    "30",
    "31",
    "32",
    "33",
]


def test_every_town_has_every_business_of_the_procurement_in_its_group() -> None:
    config, _ = load_config(EXAMPLE)
    for tenant in config.tenants:
        mine = [s for s in config.systems.values() if s.tenant == tenant]
        assert sorted(str(s.number) for s in mine if s.number != "-") == sorted(NUMBERS)
        assert {s.business for s in mine if s.number == "-"} == {"コンビニ収納", "クレジット収納"}
        assert all(s.rpo and s.rto and s.group for s in mine)
        assert Counter(s.group for s in mine).keys() == {"住民", "税", "福祉", "総合"}
    by_business = {(s.tenant, s.business): s for s in config.systems.values()}
    for tenant in config.tenants:
        juki, net = by_business[(tenant, "住民基本台帳")], by_business[(tenant, "住基ネット連携")]
        assert juki.tier == 1 and f"{tenant}-juki" in net.depends_on
        assert by_business[(tenant, "収滞納管理(収納)")].tier == 1
        assert by_business[(tenant, "畜犬管理")].tier == 4
        assert by_business[(tenant, "選挙投票管理")].group == "総合"
        assert by_business[(tenant, "固定資産税")].group == "税"


def test_the_whole_plan_puts_every_dependency_first_and_tiers_in_order() -> None:
    config, _ = load_config(EXAMPLE)
    plan = build_plan(config)
    order = {step.system: i for i, step in enumerate(plan.steps)}
    assert len(order) == len(config.systems) == 168
    for step in plan.steps:
        assert all(order[dep] < order[step.system] for dep in step.depends_on), step.system
    tiers = [step.tier for step in plan.steps]
    assert tiers == sorted(tiers)
    assert all(
        config.systems[s.system].tenant == PLAN_TOWN
        for s in build_plan(config, select_systems(config, tenant=PLAN_TOWN)).steps
    )


def test_demo_scopes(tmp_path: Path) -> None:
    default = parse_config(demo_config(tmp_path, "default"))
    assert set(REPRESENTATIVE) <= set(default.systems)
    assert sum(s.tenant == PLAN_TOWN for s in default.systems.values()) == 42
    assert len(parse_config(demo_config(tmp_path, "all")).systems) == 168
    representative = parse_config(demo_config(tmp_path, "representative"))
    assert sorted(representative.systems) == sorted(REPRESENTATIVE)
    plan = town_plan(default, PLAN_TOWN)
    assert plan["systems"] == 42 and [g["tier"] for g in plan["groups"]] == [1, 2, 3, 4]
    assert plan["groups"][0]["systems"][0]["business"] == "住民基本台帳"
