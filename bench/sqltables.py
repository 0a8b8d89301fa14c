"""The tables of the four business systems (住民記録, 税務, 国保, 介護) and their row generators.

Generators work column by column (``rng.choices`` over pre-built pools, one list per column) so
that hundreds of megabytes of dump text are produced without a Python call per field; only
the final ``"\t".join`` runs once per row. Master tables are ordered by 大字 so that a day's
updates of one district (転居, 再賦課) land in one contiguous run of rows, as they do in a real
dump sorted by its primary key.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
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


def _setai(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _jumin(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _idou(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _juminzei(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _koteishisan(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _shuno(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _hihokensha(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _kyufu(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _jukyusha(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _jisseki(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
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


def _nintei(ctx: Context, rng: random.Random, first: int, n: int, total: int) -> Columns:
    return [
        _ids(first, n),
        list(map(str, _nums(rng, 1, 12_000, n))),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(RECENT_DATES, k=n),
        rng.choices(v.CARE_LEVELS, k=n),
        [f"第{i}合議体" for i in rng.choices(range(1, 9), k=n)],
        rng.choices(("新規", "更新", "区分変更", "更新"), k=n),
    ]


Generator = Callable[[Context, random.Random, int, int, int], Columns]


@dataclass(frozen=True)
class Column:
    name: str
    sqltype: str

    @property
    def numeric(self) -> bool:
        return self.sqltype in ("bigint", "integer", "numeric(10,2)")


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    #: share of the system dump's bytes
    share: float
    #: dumped as ``INSERT`` statements (pg_dump --inserts) instead of a COPY block
    inserts: bool
    #: an append-mostly history table: a day's work adds rows at its end
    history: bool
    #: column indexes that a day's update rewrites (the rest, keys included, stay)
    mutable: tuple[int, ...]
    generate: Generator


def _cols(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*item.split(":")) for item in spec.split())


SYSTEMS: dict[str, tuple[float, tuple[TableSpec, ...]]] = {
    # system id: (dump bytes per resident relative to juki, tables)
    "juki": (
        1.0,
        (
            TableSpec(
                "idou_rireki",
                _cols(
                    "rireki_id:bigint jumin_id:bigint idou_jiyu:text idou_ymd:date todoke_ymd:date "
                    "mae_jusho:text ato_jusho:text tantosha:text"
                ),
                0.3,
                True,
                True,
                (2, 3),
                _idou,
            ),
            TableSpec(
                "jumin",
                _cols(
                    "jumin_id:bigint setai_no:bigint shimei:text shimei_kana:text seibetsu:text "
                    "seinengappi:date zokugara:text yubin_no:text jusho:text banchi:text "
                    "todoke_ymd:date koshin_ymd:date biko:text"
                ),
                0.5,
                False,
                False,
                (7, 8, 9, 10, 11),
                _jumin,
            ),
            TableSpec(
                "setai",
                _cols(
                    "setai_no:bigint setai_nushi:text yubin_no:text jusho:text banchi:text "
                    "setai_in_su:integer koshin_ymd:date"
                ),
                0.2,
                False,
                False,
                (2, 3, 4, 5, 6),
                _setai,
            ),
        ),
    ),
    "zeimu": (
        1.3,
        (
            TableSpec(
                "kojin_juminzei",
                _cols(
                    "kazei_id:bigint nendo:integer jumin_id:bigint shimei:text "
                    "kazei_shotoku:bigint shotokuwari:bigint kintowari:bigint nengaku:bigint "
                    "ki1:bigint ki2:bigint choshu_kubun:text koshin_ymd:date"
                ),
                0.35,
                False,
                False,
                (4, 5, 7, 8, 9, 11),
                _juminzei,
            ),
            TableSpec(
                "kotei_shisanzei",
                _cols(
                    "kazei_id:bigint nendo:integer shoyusha:text shozai:text chiban:text "
                    "chimoku:text chiseki:numeric(10,2) hyoka_gaku:bigint kazei_hyojun:bigint "
                    "zeigaku:bigint"
                ),
                0.25,
                False,
                False,
                (2, 7, 8, 9),
                _koteishisan,
            ),
            TableSpec(
                "shuno_rireki",
                _cols(
                    "shuno_id:bigint kazei_id:bigint zeimoku:text ki:integer nofu_ymd:date "
                    "nofu_gaku:bigint hoho:text koshin_ymd:date"
                ),
                0.4,
                False,
                True,
                (4, 5, 7),
                _shuno,
            ),
        ),
    ),
    "kokuho": (
        1.2,
        (
            TableSpec(
                "hihokensha",
                _cols(
                    "hihokensha_no:bigint setai_no:bigint shimei:text shimei_kana:text "
                    "seinengappi:date shutoku_ymd:date soshitsu_ymd:date jotai:text "
                    "hokenzei_nengaku:bigint koshin_ymd:date"
                ),
                0.3,
                False,
                False,
                (6, 7, 8, 9),
                _hihokensha,
            ),
            TableSpec(
                "kyufu_meisai",
                _cols(
                    "meisai_id:bigint hihokensha_no:bigint shinryo_ym:text iryokikan:text "
                    "nissu:integer tensu:bigint futan_gaku:bigint kyufu_gaku:bigint"
                ),
                0.7,
                False,
                True,
                (4, 5, 6, 7),
                _kyufu,
            ),
        ),
    ),
    "kaigo": (
        0.8,
        (
            TableSpec(
                "jukyusha",
                _cols(
                    "hihokensha_no:bigint shimei:text shimei_kana:text seinengappi:date "
                    "yokaigo_do:text nintei_kaishi:date nintei_shuryo:date jusho:text "
                    "koshin_ymd:date"
                ),
                0.3,
                False,
                False,
                (4, 5, 6, 8),
                _jukyusha,
            ),
            TableSpec(
                "kyufu_jisseki",
                _cols(
                    "jisseki_id:bigint hihokensha_no:bigint service_ym:text service:text "
                    "jigyosho:text tani:integer hiyo:bigint hoken_kyufu:bigint "
                    "riyosha_futan:bigint"
                ),
                0.55,
                False,
                True,
                (5, 6, 7, 8),
                _jisseki,
            ),
            TableSpec(
                "nintei_rireki",
                _cols(
                    "rireki_id:bigint hihokensha_no:bigint shinsei_ymd:date nintei_ymd:date "
                    "yokaigo_do:text shinsakai:text kubun:text"
                ),
                0.15,
                True,
                True,
                (3, 4),
                _nintei,
            ),
        ),
    ),
}
