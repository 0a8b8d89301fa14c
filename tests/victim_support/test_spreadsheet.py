"""persons.xlsx: identifiers survive Excel byte for byte, dates are dates, the duty travels with the file."""

from __future__ import annotations

import io
import string
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from victim_support.fields import FIELDS
from victim_support.spreadsheet import Context, persons_xlsx

COLUMNS = ("person_ref", "household_ref", "name", "birth_date", "machiaza_id", "banchi", "postal_code")
BUILT = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)  # 00:30 JST on the 6th
CONTEXT = Context(
    basis="APPI-69-2-3",
    purposes=("SAFETY_CONFIRMATION", "SHELTER_ADMIN"),
    from_name="五霞町",
    to_name="古河市",
    request_id="exp-20261206-abc123",
    as_of=BUILT - timedelta(minutes=7),
    built_at=BUILT,
    expires_at=BUILT + timedelta(days=30),
    retention_days=30,
)

#: What Excel would turn into a number, a date, a formula or strip: the class of identifiers that broke.
hostile_ids = st.one_of(
    st.text(string.digits, min_size=1, max_size=12),  # all digits, leading zeros
    st.builds(lambda a, b: f"{a}e{b}", st.integers(0, 999), st.integers(0, 99)),  # 123e45
    st.builds(lambda a, b: f"{a}E-{b}", st.integers(0, 999), st.integers(0, 99)),
    st.from_regex(r"\A[0-9a-f]{16}\Z"),  # the pseudonyms' own shape
    st.sampled_from(["0", "00", "0.10", "1,000", "2-3", "1/2", "TRUE", "#N/A", "=1+1", "+81", "-5", " 01", "01 "]),
    st.text(string.printable.strip() + "漢字ー　", min_size=1, max_size=10),
)


def _read(data: bytes) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["名簿", "説明"]
    return list(book["名簿"].iter_rows(values_only=True)), list(book["説明"].iter_rows(values_only=True))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.tuples(hostile_ids, hostile_ids, hostile_ids, hostile_ids), min_size=1, max_size=20))
def test_every_identifier_reads_back_byte_identical(ids: list[tuple[str, str, str, str]]) -> None:
    rows = [(p, h, "鈴木　一郎", "1950-01-02", m, b, "") for p, h, m, b in ids]
    sheet, _ = _read(persons_xlsx(COLUMNS, rows, CONTEXT).data)
    assert sheet[0] == tuple(FIELDS[c] for c in COLUMNS)
    for want, got in zip(rows, sheet[1:], strict=True):
        assert got[0] == want[0] and got[1] == want[1] and got[4] == want[4] and got[5] == want[5]
        assert all(isinstance(got[i], str) for i in (0, 1, 4, 5))


def test_identifier_cells_are_text_typed_and_dates_are_dates() -> None:
    rows = [("0012", "123e45", "=SUM(A1)", "1950-01-02", "0001001", "2-3", "0700011")]
    book = load_workbook(io.BytesIO(persons_xlsx(COLUMNS, rows, CONTEXT).data))
    cells = next(book["名簿"].iter_rows(min_row=2))
    for i, cell in enumerate(cells):
        if COLUMNS[i] == "birth_date":
            assert cell.is_date and cell.value.date() == date(1950, 1, 2)
        else:
            assert cell.data_type == "s" and cell.number_format == "@", COLUMNS[i]
    assert cells[2].value == "=SUM(A1)"  # a name that looks like a formula stays text


def test_a_date_excel_cannot_hold_stays_text_and_an_empty_one_stays_empty() -> None:
    rows = [("r1", "h1", "x", "1899-12-31", "1", "1", "1"), ("r2", "h1", "x", "", "1", "1", "1")]
    sheet, _ = _read(persons_xlsx(COLUMNS, rows, CONTEXT).data)
    assert sheet[1][3] == "1899-12-31"
    assert sheet[2][3] in (None, "")


def test_control_characters_are_replaced_and_listed() -> None:
    rows = [("r1", "h1", "鈴\x01木", "1950-01-02", "1", "1", "1"), ("r2", "h1", "佐藤", "1950-01-02", "1", "1", "1")]
    workbook = persons_xlsx(COLUMNS, rows, CONTEXT)
    sheet, _ = _read(workbook.data)
    assert sheet[1][2] == "鈴\ufffd木" and sheet[2][2] == "佐藤"
    assert workbook.replaced_rows == [{"person_ref": "r1", "fields": ["name"]}]


def test_the_explanation_sheet_states_basis_purposes_retention_and_deletion() -> None:
    _, notes = _read(persons_xlsx(COLUMNS, [("r1", "h1", "x", "1950-01-02", "1", "1", "1")], CONTEXT).data)
    text = {row[0]: row[1] for row in notes if row[0]}
    assert text["提供の根拠"].startswith("個人情報の保護に関する法律第69条第2項第3号")
    assert "安否確認" in text["利用目的"] and "避難所の運営" in text["利用目的"]
    assert text["保有期限"].startswith("2027-01-05 00:30 JST")  # JST with its label, never bare UTC
    assert text["作成日時"] == "2026-12-06 00:30 JST"
    assert "消去" in text["消去の義務"] and "報告" in text["消去の義務"]
    for key in COLUMNS:  # every column explained, by label and key
        assert any(label.startswith(FIELDS[key]) and f"({key})" in label for label in text)
