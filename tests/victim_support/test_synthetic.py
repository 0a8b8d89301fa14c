"""The synthetic registry: seeded, realistic in shape, and never holding a valid 個人番号."""

from __future__ import annotations

from collections import Counter

import pytest

from victim_support.names import RARE_SURNAMES
from victim_support.places import municipality
from victim_support.synthetic import REFERENCE_DATE, _check_digit, _my_number_check, generate

POPULATION = 20_000


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    generated, _counts = generate(municipality("082261", "那珂市"), "082261", POPULATION, seed=7)
    return list(generated)


def test_same_seed_same_registry() -> None:
    places = municipality("085421", "五霞町")
    first = list(generate(places, "085421", 500, seed=1)[0])
    again = list(generate(places, "085421", 500, seed=1)[0])
    other = list(generate(places, "085421", 500, seed=2)[0])
    assert first == again
    assert first != other


def test_population_and_shape(rows: list[dict[str, object]]) -> None:
    residents = [r for r in rows if r["status"] == "1"]
    assert len(residents) == POPULATION
    assert len(rows) > POPULATION  # 転出・死亡 records are kept, as in a real 住基
    ages = [(REFERENCE_DATE - r["birth_date"]).days // 365 for r in residents]  # type: ignore[operator]
    over_65 = sum(a >= 65 for a in ages) / len(ages)
    under_15 = sum(a < 15 for a in ages) / len(ages)
    assert 0.22 < over_65 < 0.40, over_65  # 県北 rural: about a third
    assert 0.07 < under_15 < 0.16, under_15
    assert max(ages) <= 105
    sexes = Counter(r["sex"] for r in residents)
    assert 0.45 < sexes["2"] / len(residents) < 0.56
    households = Counter(r["setai_no"] for r in residents)
    assert 2.0 < len(residents) / len(households) < 2.8  # 世帯人員 about 2.4
    heads = Counter(r["relationship"] for r in residents)
    assert heads["世帯主"] == len({r["setai_no"] for r in rows if r["relationship"] == "世帯主" and r["status"] == "1"})


def test_flags_in_realistic_proportions(rows: list[dict[str, object]]) -> None:
    residents = [r for r in rows if r["status"] == "1"]
    protected = sum(bool(r["shien_sochi"]) for r in residents) / len(residents)
    support = sum(bool(r["yoshiensha"]) for r in residents) / len(residents)
    assert 0.005 < protected < 0.02, protected  # ~1% 支援措置
    assert 0.01 < support < 0.06, support  # a few % 要支援者
    assert all(r["support_reason_code"] for r in residents if r["yoshiensha"])
    assert all(r["phone"] for r in residents if r["yoshiensha"])
    assert not any(r["phone"] for r in residents if not r["yoshiensha"])
    # DV 支援措置 covers whole accompanying households, not isolated members.
    by_household: dict[object, set[bool]] = {}
    for r in residents:
        by_household.setdefault(r["setai_no"], set()).add(bool(r["shien_sochi"]))
    assert all(len(flags) == 1 for flags in by_household.values())


def test_names_kana_and_cp932_hostile_forms(rows: list[dict[str, object]]) -> None:
    rare = {surname for surname, _ in RARE_SURNAMES}
    assert any(r["family_name"] in rare for r in rows)
    for r in rows[:2000]:
        kana = str(r["family_name_kana"]) + str(r["given_name_kana"])
        assert all("\u30a0" <= ch <= "\u30ff" for ch in kana), kana


def test_real_machiaza_and_addresses(rows: list[dict[str, object]]) -> None:
    names = {r["machiaza_name"] for r in rows}
    assert {"菅谷", "瓜連", "額田北郷"} & names
    real = {m.name for m in municipality("082261", "那珂市").machiaza}
    assert names <= real
    assert all(len(str(r["postal_code"])) == 7 for r in rows)


def test_identifiers_are_well_formed_but_never_valid_numbers(rows: list[dict[str, object]]) -> None:
    atena = [str(r["atena_no"]) for r in rows]
    assert len(set(atena)) == len(atena)
    assert all(int(a[-1]) == _check_digit(a[:-1]) for a in atena)
    for r in rows:
        kojin, jumin = str(r["kojin_bango"]), str(r["juminhyo_code"])
        assert len(kojin) == 12 and kojin.isdigit()
        assert int(kojin[-1]) != _my_number_check(kojin[:-1])  # can never be a real 個人番号
        assert len(jumin) == 11 and int(jumin[-1]) != _check_digit(jumin[:-1])


def test_my_number_check_digit_matches_the_published_example() -> None:
    # 番号法施行令8条 worked example body 12345678901 → check digit 8.
    assert _my_number_check("12345678901") == 8


def test_other_municipalities_get_plausible_machiaza() -> None:
    places = municipality("082201", "つくば市")
    assert not places.real
    assert len(places.machiaza) == 40
    assert len({m.id for m in places.machiaza}) == 40
