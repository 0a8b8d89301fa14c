"""Recovery plans are pure: groups by tier, dependency order inside a group, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest

from dc.config import parse_config
from dc.errors import ConfigError, UsageError
from failover.errors import NotDrillable
from failover.plan import build_plan, require_targets, select_systems


def _config(systems: dict[str, dict[str, Any]]) -> Any:
    base = {"tier": 1, "rpo": "15m", "rto": "4h", "business": "住民基本台帳", "source": {"kind": "path", "path": "/x"}}
    return parse_config(
        {
            "consortium": "t",
            "sites": {"primary": {"prefecture": "茨城県", "repository": "/r"}},
            "tenants": {
                "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376},
                "naka": {"name": "那珂市", "lg_code": "082261", "population": 55986},
            },
            "systems": {name: {"tenant": "goka", **base, **spec} for name, spec in systems.items()},
        }
    )


def test_groups_follow_tiers_and_dependencies_within_a_tier() -> None:
    config = _config(
        {
            "zeta": {"tier": 1},
            "alpha": {"tier": 1, "depends_on": ["zeta"]},
            "beta": {"tier": 1},
            "kaigo": {"tier": 2, "depends_on": ["alpha"]},
            "gaiji": {"tier": 3},
        }
    )
    plan = build_plan(config)
    assert [[s.system for s in g] for g in plan.groups] == [["beta", "zeta", "alpha"], ["kaigo"], ["gaiji"]]
    assert plan.step("kaigo").depends_on == ("alpha",)


def test_selection_pulls_in_dependencies_and_marks_them() -> None:
    config = _config({"juki": {}, "kaigo": {"tier": 2, "depends_on": ["juki"]}, "gaiji": {"tier": 3}})
    plan = build_plan(config, ["kaigo"])
    assert [(s.system, s.as_dependency) for s in plan.steps] == [("juki", True), ("kaigo", False)]
    assert select_systems(config, tenant="goka") == ["juki", "kaigo", "gaiji"]
    with pytest.raises(UsageError, match="unknown tenant 'x'"):
        select_systems(config, tenant="x")
    with pytest.raises(UsageError, match="belongs to tenant 'goka', not 'naka'"):
        select_systems(config, tenant="naka", systems=["juki"])
    with pytest.raises(UsageError, match="tenant 'naka' has no systems"):
        select_systems(config, tenant="naka")


def test_a_dependency_in_a_later_tier_is_a_configuration_error() -> None:
    config = _config({"juki": {"tier": 1, "depends_on": ["gaiji"]}, "gaiji": {"tier": 3}})
    with pytest.raises(ConfigError, match=r"systems\.juki\.depends_on: 'gaiji' is tier 3 but 'juki' is tier 1"):
        build_plan(config)


def test_a_cycle_is_named() -> None:
    config = _config({"a": {"depends_on": ["b"]}, "b": {"depends_on": ["c"]}, "c": {"depends_on": ["a"]}, "d": {}})
    with pytest.raises(ConfigError, match=r"dependency cycle a → b → c → a"):
        build_plan(config)


def test_a_system_without_targets_cannot_be_drilled() -> None:
    config = _config({"juki": {}, "kaigo": {"rto": None}, "gaiji": {"rpo": None, "rto": None}})
    plan = build_plan(config)
    with pytest.raises(NotDrillable, match=r"system 'gaiji' has no rto and rpo target \(and 1 more\)") as err:
        require_targets(plan)
    assert err.value.exit_code == 2 and "様式15" in str(err.value)
    require_targets(build_plan(config, ["juki"]))
