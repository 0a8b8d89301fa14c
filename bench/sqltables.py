"""The tables of the four business systems (住民記録, 税務, 国保, 介護) and their row generators.

Generators work column by column (``rng.choices`` over pre-built pools, one list per column) so
that hundreds of megabytes of dump text are produced without a Python call per field; only
the final ``"\t".join`` runs once per row. Master tables are ordered by 大字 so that a day's
updates of one district (転居, 再賦課) land in one contiguous run of rows, as they do in a real
dump sorted by its primary key.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache

from bench import vocabulary as v

Columns = list[list[str]]


def _dates(first: date, last: date) -> tuple[str, ...]:
    days = (last - first).days
    return tuple((first + timedelta(days=i)).isoformat() for i in range(days + 1))


BIRTH_DATES = _dates(date(1925, 1, 1), date(2025, 3, 31))
RECENT_DATES = _dates(date(2023, 4, 1), date(2025, 3, 31))
MONTHS = tuple(f"{y}{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13))


class Context:
    """Pools of one municipality's values; pure data, no randomness."""

    def __init__(self, muni: v.Municipality) -> None:
        self.muni = muni
        pairs = [(s, g) for s in v.SURNAMES for g in v.GIVEN_NAMES]
        self.names = [f"{s[0]}　{g[0]}" for s, g in pairs]
        self.kana = [f"{s[1]}　{g[1]}" for s, g in pairs]
        self.sexes = [g[2] for _s, g in pairs]
        self.addresses = [f"茨城県{muni.name}{d}" for d in muni.districts]
        k = 8 - len(muni.postal_prefix)  # 〒NNN-NNNN
        self.postal = [f"{muni.postal_prefix}{(i * 37 + 11) % 10**k:0{k}d}" for i in range(len(muni.districts))]
        self.banchi = [f"{a}番地{b}" if b else f"{a}番地" for a in range(1, 400) for b in (0, 1, 2, 3, 5, 8)]
        self.staff = [f"{s[0]}" for s in v.SURNAMES[:20]]


@cache
def context(slug: str) -> Context:
    return Context(next(m for m in v.MUNICIPALITIES if m.slug == slug))


def _ids(first: int, n: int) -> list[str]:
    return list(map(str, range(first, first + n)))


def _nums(rng: random.Random, lo: int, hi: int, n: int) -> list[int]:
    return rng.choices(range(lo, hi), k=n)


def _district_idx(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> list[int]:
    """District of each row: in id order while generating the base dump, random for new rows."""
    nd = len(ctx.addresses)
    if total > 0:
        return [min(nd - 1, (i * nd) // total) for i in range(first, first + n)]
    return rng.choices(range(nd), k=n)


def _people(ctx: Context, rng: random.Random, n: int) -> tuple[list[str], list[str], list[str]]:
    idx = rng.choices(range(len(ctx.names)), k=n)
    return [ctx.names[i] for i in idx], [ctx.kana[i] for i in idx], [ctx.sexes[i] for i in idx]


def setai_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    d = _district_idx(ctx, rng, first, n, total)
    names, _kana, _sex = _people(ctx, rng, n)
    return [
        _ids(first, n),
        names,
        [ctx.postal[i] for i in d],
        [ctx.addresses[i] for i in d],
        rng.choices(ctx.banchi, k=n),
        list(map(str, rng.choices((1, 1, 2, 2, 2, 3, 3, 4, 5, 6), k=n))),
        rng.choices(RECENT_DATES, k=n),
    ]


def jumin_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    d = _district_idx(ctx, rng, first, n, total)
    names, kana, sexes = _people(ctx, rng, n)
    return [
        _ids(first, n),
        [str(10_000_000 + i * 2 // 5) for i in range(first, first + n)],
        names,
        kana,
        sexes,
        rng.choices(BIRTH_DATES, k=n),
        rng.choices(v.RELATIONS, k=n),
        [ctx.postal[i] for i in d],
        [ctx.addresses[i] for i in d],
        rng.choices(ctx.banchi, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(("\\N", "\\N", "\\N", "\\N", "外国人住民", "住所未定", "支援措置対象外"), k=n),
    ]


def idou_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    before = rng.choices(ctx.addresses, k=n)
    after = rng.choices(ctx.addresses, k=n)
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 60_000, n))),
        rng.choices(v.MOVE_REASONS, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        [f"{a}{b}" for a, b in zip(before, rng.choices(ctx.banchi, k=n), strict=True)],
        [f"{a}{b}" for a, b in zip(after, rng.choices(ctx.banchi, k=n), strict=True)],
        rng.choices(ctx.staff, k=n),
    ]


def juminzei_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    income = _nums(rng, 0, 12_000_000, n)
    shotokuwari = [x * 10 // 100 // 100 * 100 for x in income]
    yearly = [s + 5_000 for s in shotokuwari]
    names, _kana, _sex = _people(ctx, rng, n)
    return [
        _ids(first, n),
        rng.choices(("2023", "2024", "2024", "2025"), k=n),
        list(map(str, _nums(rng, 1, 60_000, n))),
        names,
        list(map(str, income)),
        list(map(str, shotokuwari)),
        ["5000"] * n,
        list(map(str, yearly)),
        [str(y // 4) for y in yearly],
        [str(y // 4) for y in yearly],
        rng.choices(("普通徴収", "特別徴収", "年金特徴"), k=n),
        rng.choices(RECENT_DATES, k=n),
    ]


def koteishisan_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    d = _district_idx(ctx, rng, first, n, total)
    names, _kana, _sex = _people(ctx, rng, n)
    area = _nums(rng, 30, 5_000, n)
    value = [a * 7_300 for a in area]
    return [
        _ids(first, n),
        rng.choices(("2024", "2025"), k=n),
        names,
        [ctx.addresses[i] for i in d],
        [f"{a}番{b}" for a, b in zip(_nums(rng, 1, 3_000, n), _nums(rng, 1, 30, n), strict=True)],
        rng.choices(v.LAND_USES, k=n),
        [f"{a}.{b:02d}" for a, b in zip(area, _nums(rng, 0, 100, n), strict=True)],
        list(map(str, value)),
        [str(x * 7 // 10) for x in value],
        [str(x * 7 // 10 * 14 // 1000) for x in value],
    ]


def shuno_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 90_000, n))),
        rng.choices(("個人住民税", "固定資産税", "軽自動車税", "国民健康保険税", "介護保険料"), k=n),
        list(map(str, rng.choices((1, 2, 3, 4, 5, 6, 7, 8), k=n))),
        rng.choices(RECENT_DATES, k=n),
        list(map(str, _nums(rng, 1_000, 400_000, n))),
        rng.choices(v.PAY_METHODS, k=n),
        rng.choices(RECENT_DATES, k=n),
    ]


def hihokensha_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    names, kana, _sex = _people(ctx, rng, n)
    return [
        _ids(first, n),
        [str(10_000_000 + i * 2 // 5) for i in range(first, first + n)],
        names,
        kana,
        rng.choices(BIRTH_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(("\\N", "\\N", "\\N", "2025-03-31", "2024-09-30"), k=n),
        rng.choices(v.INSURANCE_STATUS, k=n),
        list(map(str, _nums(rng, 20_000, 890_000, n))),
        rng.choices(RECENT_DATES, k=n),
    ]


def kyufu_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    points = _nums(rng, 80, 60_000, n)
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 25_000, n))),
        rng.choices(MONTHS, k=n),
        rng.choices(v.CLINICS, k=n),
        list(map(str, rng.choices((1, 1, 1, 2, 3, 5, 10, 30), k=n))),
        list(map(str, points)),
        [str(p * 3) for p in points],
        [str(p * 7) for p in points],
    ]


def jukyusha_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    d = _district_idx(ctx, rng, first, n, total)
    names, kana, _sex = _people(ctx, rng, n)
    return [
        _ids(first, n),
        names,
        kana,
        rng.choices(BIRTH_DATES[: 365 * 40], k=n),
        rng.choices(v.CARE_LEVELS, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        [ctx.addresses[i] for i in d],
        rng.choices(RECENT_DATES, k=n),
    ]


def jisseki_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    units = _nums(rng, 100, 30_000, n)
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 12_000, n))),
        rng.choices(MONTHS, k=n),
        rng.choices(v.SERVICES, k=n),
        [f"{s}事業所" for s in rng.choices(ctx.addresses, k=n)],
        list(map(str, units)),
        [str(u * 10) for u in units],
        [str(u * 9) for u in units],
        [str(u) for u in units],
    ]


def nintei_rows(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 12_000, n))),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(v.CARE_LEVELS, k=n),
        [f"第{i}合議体" for i in rng.choices(range(1, 9), k=n)],
        rng.choices(("新規", "更新", "区分変更", "更新"), k=n),
    ]
