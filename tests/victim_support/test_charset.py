"""name_fallback and the lossy CP932 conversion."""

from __future__ import annotations

import pytest

from victim_support.charset import GETA, cp932_text, degrade, displayable, name_fallback, private_use
from victim_support.names import RARE_SURNAMES

IVS = "\U000e0100"


@pytest.mark.parametrize(
    ("name", "kana", "fallback"),
    [
        ("鈴木　一郎", "スズキ　イチロウ", ""),
        ("\U00020bb7田　花子", "ヨシダ　ハナコ", "吉田　花子"),  # 𠮷: outside CP932 and JIS X 0213
        ("\U0002123d屋　実", "ツチヤ　ミノル", "土屋　実"),  # 𡈽: JIS X 0213 only
        ("髙橋　勇", "タカハシ　イサム", "高橋　勇"),  # 髙: CP932 only (IBM extension)
        (f"葛{IVS}西　清", "カサイ　キヨシ", "葛西　清"),  # variation selector dropped
        ("\U00029e3d　太郎", "ホッケ　タロウ", "ホッケ　タロウ"),  # no plain kanji: the reading
        ("\ue000田　一", "タ　ハジメ", "タ　ハジメ"),  # private use (外字) never displays
    ],
)
def test_name_fallback(name: str, kana: str, fallback: str) -> None:
    assert name_fallback(name, kana) == fallback
    if fallback:
        assert displayable(fallback)
        fallback.encode("cp932")
        fallback.encode("shift_jis_2004")


def test_every_rare_seed_surname_needs_and_gets_a_fallback() -> None:
    for surname, _kana in RARE_SURNAMES:
        assert not displayable(surname)
        assert degrade(surname) is not None


def test_cp932_text() -> None:
    assert cp932_text("那珂市菅谷1234") == ("那珂市菅谷1234", False)
    assert cp932_text("髙橋") == ("髙橋", False)
    assert cp932_text("a—b") == ("a―b", False)  # canonical substitution, nothing lost
    assert cp932_text("\U00020bb7田") == ("吉田", True)
    assert cp932_text(f"辻{IVS}") == ("辻", True)
    assert cp932_text("\U00029e3d") == (GETA, True)
    assert cp932_text("\ue001") == (GETA, True)


def test_private_use_listing() -> None:
    assert private_use("a\ue000b\U000f0001") == ["U+E000", "U+F0001"]
    assert private_use("普通の名前") == []
