"""地方公共団体コード: the bundled 茨城県 table, its check digits, and name-and-code validation."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.config import parse_config
from dc.errors import ConfigError
from dc.lgcodes import by_name, lg_code_check_digit, name_problem, table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _raw() -> dict[str, Any]:
    return json.loads(resources.files("dc").joinpath("data/lg_codes_08.json").read_text(encoding="utf-8"))


def test_the_table_holds_the_44_municipalities_of_the_2011_survey_with_source_and_date() -> None:
    raw = _raw()
    assert "総務省" in raw["_source"] and "令和6年1月1日" in raw["_source"]
    codes = [m["code"] for m in raw["municipalities"]]
    assert len(codes) == len(set(codes)) == 44
    assert sum(m["name"].endswith("市") for m in raw["municipalities"]) == 32
    assert sum(m["name"].endswith("町") for m in raw["municipalities"]) == 10
    assert sum(m["name"].endswith("村") for m in raw["municipalities"]) == 2


def _digit_by_the_rule(code: str) -> int:
    """The 総務省 rule, written out a second way: 11 minus the remainder, ones digit; 10 -> 0, 11 -> 1."""
    remainder = sum(int(code[i]) * (6 - i) for i in range(5)) % 11
    return {0: 1, 1: 0}.get(remainder, 11 - remainder)


@pytest.mark.parametrize("code", [m["code"] for m in _raw()["municipalities"]] + [_raw()["prefecture"]["code"]])
def test_every_bundled_check_digit_follows_the_algorithm(code: str) -> None:
    assert code.startswith("08") and len(code) == 6
    assert int(code[5]) == _digit_by_the_rule(code) == lg_code_check_digit(code[:5])


def test_well_known_codes_of_other_prefectures() -> None:
    for code in ("131016", "011002", "271004", "080004"):  # 千代田区, 札幌市, 大阪市, 茨城県
        assert lg_code_check_digit(code[:5]) == int(code[5])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.from_regex(r"\d{5}", fullmatch=True))
def test_the_two_spellings_of_the_rule_agree(first_five: str) -> None:
    assert lg_code_check_digit(first_five) == _digit_by_the_rule(first_five + "0")


def test_the_reference_consortium_and_the_town_that_was_wrong() -> None:
    assert {m.code: m.name for m in table().values() if m.code in {"082252", "082261", "082309", "085421"}} == {
        "082252": "常陸大宮市",
        "082261": "那珂市",
        "082309": "かすみがうら市",
        "085421": "五霞町",
    }
    assert table()["085464"].name == "境町"
    goka = by_name("茨城県猿島郡五霞町")
    assert goka is not None and goka.code == "085421"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.sampled_from(sorted(table())), st.sampled_from(sorted(table())))
def test_any_other_municipalitys_code_under_a_name_is_refused(owner: str, written: str) -> None:
    """The class of 五霞町-as-境町: every pair of distinct municipalities, both directions."""
    problem = name_problem(table()[owner].name, written)
    assert (problem is None) == (owner == written)


def test_codes_outside_the_table_are_checked_by_digit_only_and_unknown_08_codes_are_refused() -> None:
    assert name_problem("札幌市", "011002") is None
    assert name_problem("どこか町", "082066") is not None  # 08206 (旧下館市) is no municipality now


def _config(name: str, code: str) -> dict[str, Any]:
    return {
        "consortium": "c",
        "sites": {"primary": {"prefecture": "茨城県", "role": "primary", "repository": "file:///x"}},
        "tenants": {"goka": {"name": name, "lg_code": code, "population": 9376}},
    }


def test_a_code_of_another_town_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"tenants\.goka\.lg_code: 085464 is not the code of 五霞町 \(境町's code\)"):
        parse_config(_config("五霞町", "085464"))
    assert parse_config(_config("五霞町", "085421")).tenants["goka"].lg_code == "085421"


def test_partner_codes_are_checked_too() -> None:
    raw = _config("五霞町", "085421")
    raw["partners"] = {
        "tsukuba": {
            "name": "つくば市",
            "lg_code": "082210",  # ひたちなか市
            "age_recipient": "age18qjne9dpr29q7p4y94g8jfdlvxe6p74n3xkfsm7c0s0x4hsyyygqppyqax",
        }
    }
    with pytest.raises(ConfigError, match=r"partners\.tsukuba\.lg_code"):
        parse_config(raw)


@pytest.mark.parametrize("example", ["ibaraki.yaml", "production.yaml"])
def test_shipped_examples_carry_the_right_codes(example: str) -> None:
    raw = yaml.safe_load((EXAMPLES / example).read_text(encoding="utf-8"))
    for section in ("tenants", "partners"):
        for entry in (raw.get(section) or {}).values():
            assert name_problem(entry["name"], entry["lg_code"]) is None, entry


@pytest.mark.parametrize("command", [["config", "check"], ["dc", "cost-split"]])
def test_the_cli_exits_2_with_one_line_naming_both_towns(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(_config("五霞町", "085464"), allow_unicode=True), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", *command, "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done
    named = [line for line in (done.stdout + done.stderr).splitlines() if "085464" in line]
    assert len(named) == 1 and "境町" in named[0] and "085421" in named[0], done
    assert "Traceback" not in done.stderr
