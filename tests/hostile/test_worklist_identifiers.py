"""Hostile finding: the re-entry worklist of ``failover lost`` kept 個人番号 and 住民票コード out by
an exact, lower-cased column name, so the same column spelt ``kojin-bango``, ``KojinBango``,
``ｋｏｊｉｎ＿ｂａｎｇｏ`` (full width, as a Japanese IME types it), ``個人番号１`` or
``resident_kojin_bango`` — in the configuration's ``fields``, as the town column, or as a
table's primary key (the default fields) — printed the number on every line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dc.sourcespec import Reentry
from failover.lostrows import listed_fields

SECRET = "987654321098"
STEMS = (("kojin", "bango"), ("kojin", "bangou"), ("juminhyo", "code"), ("my", "number"), ("個人", "番号"),
         ("住民票", "コード"), ("マイ", "ナンバー"))  # fmt: skip
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@st.composite
def identifier_columns(draw: st.DrawFn) -> str:
    first, second = draw(st.sampled_from(STEMS))
    name = first + draw(st.sampled_from(["", "_", "-", " ", "・"])) + second
    name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    name = draw(st.sampled_from(["", "resident_", "shimin."])) + name + draw(st.sampled_from(["", "_1", "１", "_no"]))
    return name.translate(FULL_WIDTH) if draw(st.booleans()) else name


@settings(max_examples=300, derandomize=True, deadline=None)
@given(identifier_columns())
def test_no_spelling_of_an_identifier_column_reaches_a_worklist(column: str) -> None:
    assert listed_fields({"id": "7", column: SECRET}, ["id", column]) == {"id": "7"}
    with pytest.raises(ValidationError, match="may never appear"):
        Reentry(business="住民基本台帳 異動", fields=("id", column))
    with pytest.raises(ValidationError, match="may never appear"):
        Reentry(business="住民基本台帳 異動", town=column)


def test_a_table_keyed_by_the_identifier_lists_no_field_of_it() -> None:
    # no fields configured: the primary key is the default, and here it is the 個人番号 itself
    assert listed_fields({"KojinBango": SECRET, "name": "x"}, ["KojinBango"]) == {}


@pytest.mark.parametrize("column", ["id", "kojin", "bango", "lg_code", "idou_no", "juminhyo_date", "number"])
def test_ordinary_columns_stay_listed(column: str) -> None:
    assert listed_fields({column: "1"}, [column]) == {column: "1"}
    Reentry(business="税 収納", town=column, fields=(column,))
