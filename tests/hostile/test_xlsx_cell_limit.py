"""Hostile finding: a value longer than an Excel cell holds (32,767 characters — a 方書 or a
被災者台帳 note filled by a stranger) was cut silently in ``persons.xlsx``: XlsxWriter truncates
and returns a warning code nobody read, and the manifest said nothing, so the partner's copy
differed from the signed CSV without a trace. The cut must be listed, like every other change
the workbook makes to a value.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl

from victim_support import spreadsheet
from victim_support.policy import BASES

NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
CONTEXT = spreadsheet.Context(
    basis=next(iter(BASES)),
    purposes=(),
    from_name="甲町",
    to_name="乙市",
    request_id="r-1",
    as_of=NOW,
    built_at=NOW,
    expires_at=NOW,
    retention_days=30,
)


def test_a_value_longer_than_a_cell_is_listed_never_cut_silently() -> None:
    columns = ("person_ref", "katagaki", "phone")
    long = "ア" * (spreadsheet.CELL_MAX + 10)
    rows: list[tuple[str, ...]] = [
        ("r1", long, "090"),
        ("r2", "x" * spreadsheet.CELL_MAX, "y" * spreadsheet.CELL_MAX),  # exactly full: kept whole
        ("r3", "ハイツ", long),
    ]
    book = spreadsheet.persons_xlsx(columns, rows, CONTEXT)
    sheet = openpyxl.load_workbook(io.BytesIO(book.data))["名簿"]
    read = [tuple(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert read[1] == rows[1]
    assert book.truncated_rows == [
        {"person_ref": "r1", "fields": ["katagaki"]},
        {"person_ref": "r3", "fields": ["phone"]},
    ]
    for got, row in zip(read, rows, strict=True):  # whatever was cut is listed, nothing else differs
        listed = [f for t in book.truncated_rows if t["person_ref"] == row[0] for f in t["fields"]]  # type: ignore[attr-defined]
        for key, value, cell in zip(columns, row, got, strict=True):
            assert cell == (value[: spreadsheet.CELL_MAX] if key in listed else value)
