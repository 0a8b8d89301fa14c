"""地方公共団体コード: the check digit and the bundled table of the prefecture's municipalities.

A check digit alone cannot catch a code that is valid for another municipality (五霞町 written
as 境町's 085421 passes it), so every ``lg_code`` whose prefecture the table covers is also
checked against the municipality's name. The table (dc/data/lg_codes_08.json) is 総務省's
全国地方公共団体コード list for 茨城県, with its source and date inside; codes of other
prefectures are checked by their digit only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: JIS X 0402 / 総務省: digits weighted 6..2, check digit = last digit of 11 - (sum mod 11)
WEIGHTS = (6, 5, 4, 3, 2)


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    gun: str
    prefecture: str


def lg_code_check_digit(first_five: str) -> int:
    """全国地方公共団体コード check digit: weights 6..2, mod 11, last digit of 11 - r."""
    total = sum(int(d) * w for d, w in zip(first_five, WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def check_digit_problem(code: str) -> str | None:
    """Why ``code`` is not a well-formed 6-digit code, or None."""
    if not re.fullmatch(r"\d{6}", code):
        return "must be the 6-digit 全国地方公共団体コード, as a quoted string"
    if lg_code_check_digit(code[:5]) != int(code[5]):
        return f"check digit of {code} is wrong (expected {lg_code_check_digit(code[:5])})"
    return None


@cache
def table() -> dict[str, Municipality]:
    """The bundled municipalities by code."""
    raw = json.loads(resources.files("dc").joinpath("data/lg_codes_08.json").read_text(encoding="utf-8"))
    pref = raw["prefecture"]["name"]
    return {m["code"]: Municipality(m["code"], m["name"], m["gun"], pref) for m in raw["municipalities"]}


def covered_prefectures() -> set[str]:
    return {code[:2] for code in table()}


def _bare(name: str, municipality: Municipality) -> str:
    """``name`` without the prefecture and 郡 a config may spell out (茨城県猿島郡五霞町 → 五霞町)."""
    name = name.strip().removeprefix(municipality.prefecture)
    return name.removeprefix(municipality.gun) if municipality.gun else name


def by_name(name: str) -> Municipality | None:
    """The bundled municipality called ``name`` (with or without prefecture and 郡), or None."""
    for m in table().values():
        if _bare(name, m) == m.name:
            return m
    return None


def name_problem(name: str, code: str) -> str | None:
    """Why ``code`` is not ``name``'s code, or None (also None when the table cannot tell)."""
    known = table().get(code)
    named = by_name(name)
    if named is not None and named.code != code:
        other = f" ({known.name}'s code)" if known else ""
        return f"{code} is not the code of {name}{other}: {named.name} is {named.code}"
    if known is not None and named is None:
        return f"{code} is the code of {known.name}, not of '{name}'"
    if known is None and code[:2] in covered_prefectures():
        return f"{code} is no municipality of {next(iter(table().values())).prefecture} in the 総務省 list"
    return None
