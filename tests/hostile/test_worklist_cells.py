"""Hostile finding: the re-entry worklist's xlsx raised openpyxl's IllegalCharacterError on a
C0 control character (XML 1.0 cannot hold it) in any value — a resident's note, a name from a
legacy system, a town column — so ``failover lost --out`` stopped with an internal error after
writing the CSV alone. Every cell is written (the character as U+FFFD), never as a formula, in
both files."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from failover.worklist import FORMULA_START, write_worklist

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(town=TEXT, value=TEXT, column=TEXT.filter(bool), table=TEXT)
def test_any_value_is_written_as_text_in_both_files(town: str, value: str, column: str, table: str) -> None:
    row = {"town": town, "business": "住民基本台帳 異動", "committed_at": None, "operation": "追加", "xid": 7,
           "table": table, "fields": {column: value}}  # fmt: skip
    with TemporaryDirectory() as tmp:
        csv_path, xlsx_path = write_worklist({"system": "goka-juki", "tenant_name": "五霞町", "rows": [row]}, Path(tmp))
        lines = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"), newline="")))
        assert len(lines) == 2
        assert not any(cell.startswith(FORMULA_START) for cell in lines[1])
        cells = [c for sheet in load_workbook(xlsx_path).worksheets for r in sheet.iter_rows(min_row=2) for c in r]
        assert cells and all(c.data_type == "s" for c in cells if c.value is not None)
