"""Names the receiving system can show: the ``name_fallback`` form and the lossy CP932 copy.

Registered names use MJ / 行政事務標準文字 characters and ideographic variation sequences that
CP932 (what most municipal Windows PCs and Excel expect) and often JIS X 0213 cannot hold. The
canonical files stay UTF-8 with the registered form; ``name_fallback`` carries a form that
both CP932 and JIS X 0213 can represent. 内閣府「被災者台帳作成にかかるデータ項目の例示」allows
a name different from the 住基 registration where 外字 cannot be entered.

The fallback drops variation selectors (the base kanji is the plain form), maps known
variants to their plain kanji (MJ 縮退マップ style), and where nothing maps, uses the reading
(katakana) instead — the research found some MJ characters have no 縮退 target at all.
Private-use characters (MJ+ / 外字) are never "representable": CP932 would encode them into
its user-defined area, where they mean something different on every receiving PC.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: Variant → plain kanji for characters outside CP932 ∩ JIS X 0213 (a small 縮退 table).
DEGENERATE = {
    "\U00020bb7": "吉",  # 𠮷 (つちよし)
    "\U0002123d": "土",  # 𡈽
    "\U0002363a": "橋",  # 𣘺
    "髙": "高",  # はしごだか: CP932 (IBM extension) but not JIS X 0213
    "\u9dd7": "鴎",  # 鷗
}

# Code points CP932 encoders disagree on; these substitutions lose nothing.
_CANONICAL = str.maketrans({"\u2014": "\u2015", "\u00a2": "\uffe0", "\u00a3": "\uffe1", "\u00ac": "\uffe2"})
_CANONICAL_CHARS = re.compile("[\u2014\u00a2\u00a3\u00ac]")
_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_PRIVATE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
GETA = "〓"  # 〓 (下駄記号): the conventional mark for a character that cannot be shown


def _canonical(text: str) -> str:
    # str.translate looks every character up in a dict: search first, translate the rare hit.
    return text.translate(_CANONICAL) if _CANONICAL_CHARS.search(text) else text


def private_use(text: str) -> list[str]:
    """Private-use code points (MJ+ / 外字) in ``text``, as ``U+XXXX``."""
    return [f"U+{ord(ch):04X}" for ch in _PRIVATE.findall(text)]


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def displayable(text: str) -> bool:
    """True if CP932 and JIS X 0213 systems both show ``text`` exactly as registered."""
    if text.isascii():
        return True
    if _SELECTORS.search(text) or _PRIVATE.search(text):
        return False
    canonical = _canonical(text)
    return _encodes(canonical, "cp932") and _encodes(canonical, "shift_jis_2004")


def degrade(text: str) -> str | None:
    """A CP932- and JIS X 0213-safe form by dropping selectors and mapping variants, or ``None``."""
    plain = _canonical("".join(DEGENERATE.get(ch, ch) for ch in _SELECTORS.sub("", text)))
    return plain if displayable(plain) else None


@lru_cache(maxsize=65536)  # names repeat across a registry; the check encodes twice
def name_fallback(name: str, kana: str) -> str:
    """Empty when the registered name displays everywhere; else the degraded form, else the reading."""
    if displayable(name):
        return ""
    degraded = degrade(name)
    if degraded is not None:
        return degraded
    return kana if displayable(kana) else "".join(ch if displayable(ch) else GETA for ch in kana)


def cp932_text(text: str) -> tuple[str, bool]:
    """``(text for a CP932 file, lossy)``; unrepresentable characters degrade, else become 〓."""
    if text.isascii():
        return text, False
    canonical = _canonical(text)
    if not _SELECTORS.search(canonical) and not _PRIVATE.search(canonical) and _encodes(canonical, "cp932"):
        return canonical, False
    out = []
    for ch in _SELECTORS.sub("", canonical):
        if not (_encodes(ch, "cp932") and not _PRIVATE.match(ch)):
            ch = DEGENERATE.get(ch, GETA)
        out.append(ch)
    return "".join(out), True
