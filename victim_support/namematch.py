"""Comparing a name as a shelter official types it with the name as the registry holds it.

The person in front of the official writes 高橋 where the registry holds 髙橋, types half-width
ｶﾀｶﾅ on a borrowed PC, or gives the reading in hiragana. One key per name part makes those
equal: Unicode NFKC (full/half width, compatibility ideographs), ideographic variation
selectors dropped (an MJ registration's IVS is not something anyone can type), the old and
variant forms of ``data/name_variants.tsv`` mapped to their common form, katakana folded to
hiragana, and every space removed. Nothing else is folded: a near-miss (高橋 / 高僑, 一郎 /
一朗) stays a miss, so a lookup never widens into a search.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

#: characters that would make a query a pattern in any system an answer might be fed to
WILDCARDS = frozenset("*?%_…")  # after NFKC: ＊ is *, ％ is %
_KATAKANA = range(0x30A1, 0x30F7)  # ァ..ヶ; ヷ-ヺ and ー stay as they are
_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))


@cache
def variants() -> dict[str, str]:
    """The variant → common form table (after NFKC, so the keys are what a normalised name holds)."""
    text = resources.files("victim_support").joinpath("data/name_variants.tsv").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            variant, common = line.split("\t")
            table[unicodedata.normalize("NFKC", variant)] = common
    return table


def _selector(ch: str) -> bool:
    return any(ord(ch) in span for span in _SELECTORS)


def name_key(text: str) -> str:
    """The comparison key of one name part (氏 or 名), in kanji or in kana."""
    table = variants()
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch.isspace() or _selector(ch):
            continue
        ch = table.get(ch, ch)
        if ord(ch) in _KATAKANA:
            ch = chr(ord(ch) - 0x60)
        out.append(ch)
    return "".join(out)


def has_wildcard(text: str) -> bool:
    return any(ch in WILDCARDS for ch in unicodedata.normalize("NFKC", text))


def part_matches(query: str, kanji: str, kana: str) -> bool:
    """``query`` (one part, already a key) equals the registered kanji or the registered reading."""
    return bool(query) and query in (name_key(kanji), name_key(kana))
