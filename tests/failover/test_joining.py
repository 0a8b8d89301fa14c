"""後乗り: the what-if of a town joining changes nothing; join writes a new file, a diff and keys."""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.config import parse_config
from dc.errors import ConfigError, UsageError
from failover.joining import Joiner, join_text, plan_join
from tests.conftest import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
RAW: dict[str, Any] = yaml.safe_load(TEXT)
SAKAI = Joiner("sakai", "境町", "085464", 24_000, like="goka")
GOKA_BUSINESSES = sorted({s["business"] for s in RAW["systems"].values() if s["tenant"] == "goka"})


def test_plan_join_shows_every_bill_now_and_with_the_joiner_and_changes_nothing() -> None:
    before = copy.deepcopy(RAW)
    plan = plan_join(RAW, SAKAI, {})
    assert before == RAW
    bills = {b["tenant"]: b for b in plan.bills}
    # the example's contract adds 300+120+176 yen per resident and 6,000,000+4,500,000 per town
    assert plan.total_yen == 287_000_000 and plan.total_with_joiner_yen == 287_000_000 + 24_000 * 596 + 10_500_000
    assert sum(b["now_yen"] for b in plan.bills if b["now_yen"] is not None) == plan.total_yen
    assert sum(b["with_joiner_yen"] for b in plan.bills) == plan.total_with_joiner_yen
    assert plan.contract is not None and plan.contract["priced"]
    assert sum(i["with_joiner_yen"] for i in plan.contract["items"]) == plan.total_with_joiner_yen
    assert bills["sakai"]["now_yen"] is None and bills["sakai"]["with_joiner_yen"] > 0
    assert all(b["change_yen"] < 0 for t, b in bills.items() if t != "sakai"), "sharing with one more lowers every bill"
    assert all(b["share_with_joiner"] < b["share_now"] for t, b in bills.items() if t != "sakai")
    assert sum(b["share_with_joiner"] for b in plan.bills) == pytest.approx(1, abs=1e-5)
    assert {b["equal_share_with_joiner"] for b in plan.bills} == {0.2}
    assert len(plan.systems) == 42 and all(s.startswith("sakai-") for s in plan.systems)
    assert plan.drills["systems_now"] == 168 and plan.drills["systems_with_joiner"] == 210
    assert [g["tier"] for g in plan.plan] == [1, 2, 3, 4] and "sakai-juki" in plan.plan[0]["joiner"]


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    st.integers(1, 3_000_000),
    st.lists(st.tuples(st.integers(0, 10**8), st.integers(0, 5_000)), min_size=5, max_size=5),
)
def test_the_contract_grows_by_its_joining_terms_and_the_bills_add_up_to_it(
    population: int, terms: list[tuple[int, int]]
) -> None:
    raw = copy.deepcopy(RAW)
    for item, (member, resident) in zip(raw["costs"]["after"]["items"], terms, strict=True):
        item.update(per_member_yen=member, per_resident_yen=resident)
    plan = plan_join(raw, Joiner("sakai", "境町", "085464", population, like="goka"), {})
    added = sum(member + resident * population for member, resident in terms)
    assert plan.total_with_joiner_yen == 287_000_000 + added
    assert sum(b["with_joiner_yen"] for b in plan.bills) == plan.total_with_joiner_yen, "to the yen"
    assert plan.contract is not None and plan.contract["priced"] == (added > 0)


def test_a_contract_that_prices_no_joining_keeps_its_total_and_says_so() -> None:
    raw = copy.deepcopy(RAW)
    for item in raw["costs"]["after"]["items"]:
        item.pop("per_member_yen", None)
        item.pop("per_resident_yen", None)
    plan = plan_join(raw, SAKAI, {})
    assert plan.total_with_joiner_yen == plan.total_yen == 287_000_000
    assert plan.contract is not None and not plan.contract["priced"] and "unchanged" in plan.contract["basis"]


def test_the_repository_load_is_estimated_from_the_members_bytes_per_resident() -> None:
    from dc.cost import TenantUsage

    usage = {"goka": TenantUsage(repository_bytes=9_376_000), "naka": TenantUsage(repository_bytes=55_986_000)}
    repo = plan_join(RAW, SAKAI, usage).repository
    assert repo["bytes_now"] == 65_362_000 and repo["joiner_bytes_estimate"] == 24_000_000


@pytest.mark.parametrize(
    ("joiner", "error", "message"),
    [
        (Joiner("sakai", "境町", "085421", 24_000), ConfigError, "085421 is not the code of 境町"),
        (Joiner("sakai", "境町", "085465", 24_000), ConfigError, "check digit"),
        (Joiner("goka", "境町", "085464", 24_000), UsageError, "already a member"),
        (Joiner("Sakai", "境町", "085464", 24_000), UsageError, "lower-case"),
        (Joiner("sakai", "境町", "085464", 24_000, like="tsukuba"), UsageError, "unknown member"),
        (
            Joiner("sakai", "境町", "085464", 24_000, businesses=("生活保護",)),
            UsageError,
            "runs no system for 生活保護",
        ),
    ],
)
def test_a_wrong_joiner_is_refused_with_one_message(joiner: Joiner, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        plan_join(RAW, joiner, {})


@settings(max_examples=15, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(GOKA_BUSINESSES), max_size=4, unique=True))
def test_join_text_only_inserts_lines_and_loads_with_the_dependencies(businesses: list[str]) -> None:
    joiner = Joiner("sakai", "境町", "085464", 24_000, like="goka", businesses=tuple(businesses))
    new = join_text(TEXT, RAW, joiner, "goka")
    old_lines = TEXT.splitlines()
    it = iter(new.splitlines())
    assert all(any(line == n for n in it) for line in old_lines), "every original line kept, in order"
    config = parse_config(yaml.safe_load(new))
    mine = {sid: s for sid, s in config.systems.items() if s.tenant == "sakai"}
    assert config.tenants["sakai"].lg_code == "085464"
    assert set(businesses) <= {s.business for s in mine.values()}
    for s in mine.values():
        assert set(s.depends_on) <= set(mine), "a chosen business brings what it depends on"


def test_cli_join_writes_a_new_file_a_diff_and_keys_and_never_the_old_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "bcpctl.yaml"
    config.write_text(TEXT.replace("sqlite:////var/lib/bcpctl/control.db", f"sqlite:///{tmp_path / 'c.db'}"), "utf-8")
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    original = config.read_bytes()
    args = ("--config", str(config), "--name", "境町", "--lg-code", "085464", "--population", "24000", "--id", "sakai")
    what_if = cli("tenant", "plan-join", *args, "--json")
    assert what_if.returncode == 0, what_if.stderr
    assert json.loads(what_if.stdout)["tenant"] == "sakai" and config.read_bytes() == original
    told = cli("tenant", "plan-join", *args, env={"BCPCTL_LANG": "ja", "COLUMNS": "200"})
    assert told.returncode == 0, told.stderr
    assert "共同契約の総額: 287,000,000円 → 311,804,000円（+24,804,000円）" in told.stdout
    assert "五霞町" in told.stdout and "15.56%" in told.stdout and "12.64%" in told.stdout, told.stdout
    out, keys = tmp_path / "joined.yaml", tmp_path / "keys"
    joined = cli(
        "tenant", "join", *args, "--systems", "住民基本台帳", "--out", str(out), "--keys-dir", str(keys), "--json"
    )
    assert joined.returncode == 0, joined.stderr
    result = json.loads(joined.stdout)
    assert config.read_bytes() == original
    diff = Path(result["diff"]).read_text(encoding="utf-8")
    assert '+  sakai: {name: "境町", lg_code: "085464", population: 24000}' in diff
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert len(removed) == 5 and all("yen:" in line and "category:" in line for line in removed), "only the yen"
    new_raw = yaml.safe_load(out.read_text(encoding="utf-8"))
    plan = json.loads(what_if.stdout)
    assert plan["total_with_joiner_yen"] == sum(i["yen"] for i in new_raw["costs"]["after"]["items"])
    assert result["contract"]["with_joiner_yen"] == plan["total_with_joiner_yen"]
    assert "# 後乗り 境町 (085464): 契約総額 287,000,000円 → " in diff and "五霞町: 44,653,110円" in diff
    # the joiner's export approvers are named, not enrolled; the steps say what each must do
    approvers = new_raw["exports"]["tenants"]["sakai"]["approvers"]
    assert approvers == ["sakai-approver-1", "sakai-approver-2"] and not set(approvers) & set(new_raw["approvers"])
    assert [s["approver"] for s in result["approver_steps"]] == approvers
    assert all("bcpctl approver enroll" in s["command"] and str(out) in s["command"] for s in result["approver_steps"])
    assert result["signing_key_fingerprint"].startswith("SHA256:")
    for key in result["keys"]:
        assert stat.S_IMODE(Path(key).stat().st_mode) == 0o600 and Path(key).read_text() not in joined.stdout
    assert [job["system"] for job in result["schedule"]] == ["sakai-juki"]
    again = cli("tenant", "join", *args, "--out", str(out), "--keys-dir", str(keys))
    assert again.returncode == 2 and "exists" in again.stderr and again.stderr.count("\n") == 1
    in_place = cli("tenant", "join", *args, "--out", str(config), "--keys-dir", str(tmp_path / "k2"))
    assert in_place.returncode == 2 and "never edits it in place" in in_place.stderr
    wrong = cli("tenant", "plan-join", *args[:4], "--lg-code", "085421", "--population", "1")
    assert wrong.returncode == 2 and "境町 is 085464" in wrong.stderr


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (("sakai-a",), "2 approvers needed"),
        (("sakai-a", "sakai-a"), "given twice"),
        (("sakai-a", "goka-somu-kacho"), "goka-somu-kacho already approves for another town"),
        (("sakai-a", "ibaraki-pref-bosai"), "already approves"),
        (("sakai a", "sakai-b"), "invalid approver name"),
    ],
)
def test_the_joiners_approvers_are_new_distinct_people_enough_for_the_two_person_rule(
    given: tuple[str, ...], message: str
) -> None:
    from monitoring.joinrun import approver_names

    config = parse_config(copy.deepcopy(RAW))
    assert approver_names(config, "sakai", ()) == ("sakai-approver-1", "sakai-approver-2")
    assert approver_names(config, "sakai", ("sakai-a", "sakai-b", "sakai-c")) == ("sakai-a", "sakai-b", "sakai-c")
    with pytest.raises(UsageError, match=message):
        approver_names(config, "sakai", given)


def test_the_joiner_brings_its_pfif_domain_and_a_bad_one_is_refused() -> None:
    joiner = Joiner("sakai", "境町", "085464", 24_000, like="goka", pfif_domain="town.sakai.lg.jp")
    new = join_text(TEXT, RAW, joiner, "goka")
    assert parse_config(yaml.safe_load(new)).tenants["sakai"].pfif_domain == "town.sakai.lg.jp"
    with pytest.raises(ConfigError, match=r"tenants\.sakai\.pfif_domain"):
        plan_join(RAW, Joiner("sakai", "境町", "085464", 24_000, like="goka", pfif_domain="Sakai Town"), {})
