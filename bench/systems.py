"""The business systems' tables: columns, dump style, how a day's work touches them.

Each system's dump size scales with the municipality's population times the system's weight
(tax and insurance systems carry more rows per resident than 住民記録). ``history`` tables
grow at their end (届出, 収納, 給付 rows); master tables are updated in place.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from bench import sqltables as g
from bench.sqltables import Columns, Context

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
                g.idou_rows,
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
                g.jumin_rows,
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
                g.setai_rows,
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
                g.juminzei_rows,
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
                g.koteishisan_rows,
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
                g.shuno_rows,
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
                g.hihokensha_rows,
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
                g.kyufu_rows,
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
                g.jukyusha_rows,
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
                g.jisseki_rows,
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
                g.nintei_rows,
            ),
        ),
    ),
}
