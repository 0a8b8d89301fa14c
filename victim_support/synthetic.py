"""A seeded synthetic resident registry that looks like a real rural municipality's.

Residents come in households (single elderly, couples, families, single parents, three
generations), with ages from a population pyramid close to 県北 Ibaraki (about a third over
65), era-appropriate given names with readings, real 町字 where known, ~1% under 支援措置
(DV等, whole accompanying households), ~0.1% 抑止, a few % 避難行動要支援者 (mostly the very
old) and a handful of names CP932 cannot hold.

Synthetic 個人番号 and 住民票コード deliberately carry a WRONG check digit, so no generated
value can be a real person's number. Phone numbers use a 市内局番 starting with 0, which is
never assigned.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from victim_support.names import GIVEN_NAMES, RARE_SURNAMES, SURNAMES, era
from victim_support.places import Municipality
from victim_support.schema import STATUS_RESIDENT, SUPPORT_REASONS

#: Ages are computed against a fixed day so the same seed always gives the same registry.
REFERENCE_DATE = date(2025, 4, 1)

# Share of residents per 5-year band, 0–4 … 100+ (県北 rural profile, 2020 census shape).
_BANDS = (3.0, 3.5, 3.9, 4.3, 3.9, 3.8, 4.2, 4.8, 5.6, 6.6, 6.4, 6.5, 7.2, 8.6, 8.2, 5.9, 4.8, 3.3, 1.7, 0.5, 0.1)
AGE_WEIGHTS = tuple(w for w in _BANDS for _ in range(5))
MAX_AGE = len(AGE_WEIGHTS) - 1
_AGE_CUM = tuple(itertools.accumulate(AGE_WEIGHTS))

_HOUSEHOLD_KINDS = ("single", "couple", "family", "single_parent", "three_generations", "with_parent")
_HOUSEHOLD_CUM = tuple(itertools.accumulate((0.33, 0.25, 0.21, 0.06, 0.10, 0.05)))
_AREA_CODES = {"082252": "0295", "082261": "029", "082309": "029", "085421": "0280"}
_BUILDINGS = ("コーポ", "ハイツ", "メゾン", "レジデンス", "サンライズ", "グリーンヒル")
_RARE_EVERY = 250
_OTHER_CITIES = ("水戸市", "日立市", "ひたちなか市", "常陸太田市", "笠間市", "古河市")


def _ri(rng: random.Random, low: int, high: int) -> int:
    """``randint`` without its per-call overhead (the generator draws ~10 per resident)."""
    return low + int(rng.random() * (high - low + 1))


_W6 = tuple(2 + i % 6 for i in range(16))
_WMY = tuple(n + 1 if n <= 6 else n - 5 for n in range(1, 12))


def _check_digit(digits: str) -> int:
    """mod-11 check digit with weights 2..7 repeating from the right (宛名番号-style)."""
    total = sum(map(int.__mul__, map(int, reversed(digits)), _W6))
    return (11 - total % 11) % 10


def _my_number_check(digits: str) -> int:
    """番号法施行令 check digit for an 11-digit 個人番号 body."""
    total = sum(map(int.__mul__, map(int, reversed(digits)), _WMY))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


@dataclass
class SeedCounts:
    persons: int = 0
    residents: int = 0
    households: int = 0
    support_needed: int = 0
    protected: int = 0
    fallback_names: int = 0
    damage: int = 0
    age_65_plus: int = 0


@dataclass
class _Ctx:
    rng: random.Random
    places: Municipality
    lg_code: str
    reference: date
    area_cum: list[float]
    surname_cum: list[float]
    counts: SeedCounts = field(default_factory=SeedCounts)
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))


def _age(ctx: _Ctx, lo: int, hi: int) -> int:
    """An age in ``[lo, hi]`` drawn from the pyramid (inverse CDF on the precomputed cumulative)."""
    lo, hi = max(0, lo), min(MAX_AGE, hi)
    if hi <= lo:
        return max(0, lo)
    low = _AGE_CUM[lo - 1] if lo else 0.0
    return min(hi, bisect.bisect_right(_AGE_CUM, ctx.rng.uniform(low, _AGE_CUM[hi])))


def _household(ctx: _Ctx) -> list[tuple[str, int, str]]:
    """Members as ``(relationship, age, sex)``, the head first."""
    rng = ctx.rng
    kind = rng.choices(_HOUSEHOLD_KINDS, cum_weights=_HOUSEHOLD_CUM)[0]
    if kind == "single":
        age = _age(ctx, 18, 100)
        return [("世帯主", age, "2" if age >= 65 and rng.random() < 0.62 else rng.choice("112"))]
    if kind == "single_parent":
        head = _age(ctx, 24, 56)
        members = [("世帯主", head, "2" if rng.random() < 0.85 else "1")]
        return members + _children(ctx, head, rng.choices((1, 2, 3), (0.5, 0.38, 0.12))[0])
    # Couples in a rural town are mostly the elderly whose children left (老老世帯).
    low, high = {"couple": (24, 99), "family": (27, 62), "three_generations": (52, 88), "with_parent": (40, 68)}[kind]
    if kind == "couple" and rng.random() < 0.75:
        low = 62
    head_age = _age(ctx, low, high)
    members = [("世帯主", head_age, "1" if rng.random() < 0.85 else "2")]
    spouse_age = max(18, min(MAX_AGE, head_age + round(rng.gauss(-2, 3))))
    if kind != "with_parent" or rng.random() < 0.6:
        members.append(("妻" if members[0][2] == "1" else "夫", spouse_age, "2" if members[0][2] == "1" else "1"))
    if kind == "family":
        members += _children(ctx, min(head_age, spouse_age), rng.choices((1, 2, 3), (0.35, 0.45, 0.2))[0])
    elif kind == "three_generations":
        son = max(20, min(head_age - 22, head_age - _ri(rng, 24, 34)))
        members += [("子", son, "1"), ("子の妻", max(20, son + round(rng.gauss(-2, 3))), "2")]
        members += [("孫", g, s) for _, g, s in _children(ctx, son, rng.choices((1, 2, 3), (0.4, 0.45, 0.15))[0])]
    elif kind == "with_parent":
        parent_age = min(102, head_age + _ri(rng, 24, 34))
        members.append(("母", parent_age, "2") if rng.random() < 0.75 else ("父", parent_age, "1"))
    return members


def _children(ctx: _Ctx, parent_age: int, count: int) -> list[tuple[str, int, str]]:
    rng = ctx.rng
    ages = sorted((parent_age - _ri(rng, 22, 40) for _ in range(count)), reverse=True)
    return [("子", a, rng.choice("12")) for a in ages if a >= 0]


def _ident(ctx: _Ctx, width: int, base: int) -> str:
    body = f"{base + next(ctx.serial):0{width - 1}d}"
    return body + str(_check_digit(body))


def _birth(ctx: _Ctx, age: int) -> date:
    return ctx.reference - timedelta(days=age * 365 + age // 4 + _ri(ctx.rng, 1, 364))


def generate(
    places: Municipality, lg_code: str, population: int, *, seed: int = 0, reference: date = REFERENCE_DATE
) -> tuple[Iterator[dict[str, Any]], SeedCounts]:
    """Rows for ``residents`` until ``population`` current residents exist; counts fill as rows are consumed."""
    rng = random.Random(f"bcpctl-registry:{seed}:{lg_code}")
    ctx = _Ctx(
        rng=rng,
        places=places,
        lg_code=lg_code,
        reference=reference,
        area_cum=list(itertools.accumulate(rng.lognormvariate(0, 0.8) for _ in places.machiaza)),
        surname_cum=list(itertools.accumulate(1 / (rank + 3) ** 0.9 for rank in range(len(SURNAMES)))),
    )
    return _rows(ctx, population), ctx.counts


def _rows(ctx: _Ctx, population: int) -> Iterator[dict[str, Any]]:
    rng, counts = ctx.rng, ctx.counts
    area_code = _AREA_CODES.get(ctx.lg_code, "029")
    while counts.residents < population:
        members = _household(ctx)
        counts.households += 1
        setai = _ident(ctx, 10, 500_000_000)
        area = rng.choices(ctx.places.machiaza, cum_weights=ctx.area_cum)[0]
        chome = not area.id.endswith("000")
        banchi = f"{_ri(rng, 1, 30)}-{_ri(rng, 1, 25)}" if chome else str(_ri(rng, 1, 3500))
        if not chome and rng.random() < 0.3:
            banchi += f"-{_ri(rng, 1, 12)}"
        katagaki = ""
        if rng.random() < 0.08:
            katagaki = f"{rng.choice(_BUILDINGS)}{area.name[:2]} {_ri(rng, 1, 3)}0{_ri(rng, 1, 8)}号室"
        # Every 250th household (from the 4th) carries a registered form outside CP932, so even a
        # small registry exercises the fallback path (~0.4%, like MJ 外字 in a real 住基).
        if counts.households % _RARE_EVERY == 4:
            surname, surname_kana = RARE_SURNAMES[(counts.households // _RARE_EVERY) % len(RARE_SURNAMES)]
        else:
            surname, surname_kana = rng.choices(SURNAMES, cum_weights=ctx.surname_cum)[0]
        # 支援措置 covers the victim and the children who fled with her (住基法 事務処理要領 第5-10).
        head_rel, head_age, head_sex = members[0]
        dv_chance = 0.09 if len(members) > 1 and all(r in ("世帯主", "子") for r, _, _ in members) else 0.004
        if head_rel == "世帯主" and len(members) == 1 and head_sex == "2" and head_age < 60:
            dv_chance = 0.04
        protected = rng.random() < dv_chance
        all_old = all(a >= 75 for _, a, _ in members)
        phone = f"{area_code}-0{_ri(rng, 0, 9)}{'' if len(area_code) == 4 else _ri(rng, 0, 9)}-{_ri(rng, 0, 9999):04d}"
        honseki_local = rng.random() < 0.45
        for relationship, age, sex in members:
            yield _person(ctx, setai, relationship, age, sex, surname, surname_kana, area, banchi, katagaki,
                          protected, all_old, len(members), phone, honseki_local)  # fmt: skip
            if counts.residents >= population:
                return


def _person(
    ctx: _Ctx,
    setai: str,
    relationship: str,
    age: int,
    sex: str,
    surname: str,
    surname_kana: str,
    area: Any,
    banchi: str,
    katagaki: str,
    protected: bool,
    all_old: bool,
    household_size: int,
    phone: str,
    honseki_local: bool,
) -> dict[str, Any]:
    rng, counts = ctx.rng, ctx.counts
    birth = _birth(ctx, age)
    given, given_kana = rng.choice(GIVEN_NAMES[sex if sex in "12" else "2"][era(birth.year)])
    family, family_kana = (surname, surname_kana)
    if relationship == "子の妻" and rng.random() < 0.02:
        family, family_kana = rng.choice(SURNAMES)  # 旧姓のまま (通称 not modelled)
    status = STATUS_RESIDENT if rng.random() >= 0.02 else rng.choice("2334")
    support = rng.random() < (0.13 if age >= 75 else 0.03 if age >= 65 else 0.006)
    reason = ""
    if support:
        if age >= 75 and household_size == 1:
            reason = "07"
        elif all_old:
            reason = "06"
        else:
            reason = rng.choices(tuple(SUPPORT_REASONS), (30, 25, 8, 6, 6, 0, 0, 5))[0]
    moved_in = birth if rng.random() < 0.4 else ctx.reference - timedelta(days=_ri(rng, 30, max(31, age * 365)))
    kojin = f"{_ri(rng, 0, 10**11 - 1):011d}"
    kojin += str((_my_number_check(kojin) + 1 + _ri(rng, 0, 8)) % 10)  # never a valid 個人番号
    jumin = f"{_ri(rng, 0, 10**10 - 1):010d}"
    jumin += str((_check_digit(jumin) + 1 + _ri(rng, 0, 8)) % 10)  # never a valid 住民票コード
    honseki = (
        f"{ctx.places.pref}{ctx.places.city}{area.name}{_ri(rng, 1, 3500)}番地"
        if honseki_local
        else f"茨城県{rng.choice(_OTHER_CITIES)}{_ri(rng, 1, 9)}番地"
    )
    row = {
        "atena_no": _ident(ctx, 10, 100_000_000),
        "setai_no": setai,
        "family_name": family,
        "given_name": given,
        "family_name_kana": family_kana,
        "given_name_kana": given_kana,
        "kana_verified": rng.random() < 0.95,
        "birth_date": birth,
        "sex": sex,
        "relationship": relationship,
        "machiaza_id": area.id,
        "machiaza_name": area.name,
        "banchi": banchi,
        "katagaki": katagaki,
        "postal_code": area.postal_code,
        "resident_since": max(moved_in, birth),
        "status": status,
        "shien_sochi": protected,
        "yokushi": rng.random() < 0.001,
        "yoshiensha": support,
        "support_reason_code": reason,
        "phone": phone if support else "",
        "kojin_bango": kojin,
        "juminhyo_code": jumin,
        "honseki": honseki,
        "kokuho_no": f"{_ri(rng, 1, 99):02d}-{_ri(rng, 0, 999999):06d}" if rng.random() < 0.25 else "",
        "kiso_nenkin_no": f"{_ri(rng, 1000, 9999)}-{_ri(rng, 0, 999999):06d}" if age >= 20 else "",
    }
    counts.persons += 1
    if status == STATUS_RESIDENT:
        counts.residents += 1
        counts.support_needed += support
        counts.protected += protected or row["yokushi"]
        counts.fallback_names += family in dict(RARE_SURNAMES)
        counts.age_65_plus += age >= 65
    return row
