"""The 町字 (town and block names) of each municipality, for realistic synthetic addresses.

Real 町字 names ship for the four reference municipalities (``data/machiaza.json``, from
geolonia/japanese-addresses, CC BY 4.0); any other tenant gets plausible generated names.
町字IDs imitate the アドレス・ベース・レジストリ shape (4-digit 大字 + 3-digit 丁目) but are
assigned here, not taken from the ABR: an export must carry both the id and the name because
"2丁目3番" / "2の3" notations break matching between systems (内閣府, 2025).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_KANJI_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


@dataclass(frozen=True)
class Machiaza:
    id: str
    name: str
    postal_code: str


@dataclass(frozen=True)
class Municipality:
    pref: str
    city: str
    machiaza: tuple[Machiaza, ...]
    #: True when the names are the municipality's real 町字.
    real: bool


@cache
def _reference() -> dict[str, dict[str, Any]]:
    text = resources.files("victim_support").joinpath("data/machiaza.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _chome(name: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+?)([一二三四五六七八九十]+)丁目", name)
    if not match:
        return name, 0
    tens, sep, ones = match.group(2).partition("十")
    if not sep:
        return match.group(1), _KANJI_DIGITS[tens] if len(tens) == 1 else 0
    return match.group(1), _KANJI_DIGITS.get(tens, 1) * 10 + _KANJI_DIGITS.get(ones, 0)


def _assign_ids(names: list[tuple[str, str]], postal_prefix: str) -> tuple[Machiaza, ...]:
    oaza_ids: dict[str, int] = {}
    result = []
    for index, (name, postal) in enumerate(names):
        base, chome = _chome(name)
        oaza = oaza_ids.setdefault(base, len(oaza_ids) + 1)
        # Postcodes the source did not carry are synthetic but keep the municipality's prefix.
        code = postal or f"{postal_prefix}{(1000 + index * 37) % 10000:04d}"
        result.append(Machiaza(f"{oaza:04d}{chome:03d}", name, code))
    return tuple(result)


_PREFIXES = ("上", "下", "東", "西", "北", "南", "中", "新", "大", "小", "")
_STEMS = ("田", "原", "沢", "野", "谷", "宮", "山", "川", "崎", "根", "井", "森", "岡", "塚", "台", "浦")
_STEMS2 = ("石", "高", "松", "竹", "梅", "桜", "柳", "稲", "富", "長", "平", "福", "青", "赤", "白", "黒")


def municipality(lg_code: str, city: str, *, pref: str = "茨城県", count: int = 40) -> Municipality:
    """The municipality's 町字: real ones for the reference tenants, else ``count`` plausible ones."""
    ref = _reference().get(lg_code)
    if ref is not None:
        names = [(str(n), str(p)) for n, p in ref["machiaza"]]
        return Municipality(str(ref["pref"]), str(ref["city"]), _assign_ids(names, str(ref["postal_prefix"])), True)
    rng = random.Random(f"machiaza:{lg_code}")
    seen: set[str] = set()
    while len(seen) < count:
        seen.add(rng.choice(_PREFIXES) + rng.choice(_STEMS2) + rng.choice(_STEMS))
    names = [(name, "") for name in sorted(seen)]
    return Municipality(pref, city, _assign_ids(names, f"3{lg_code[2:4]}"), False)
