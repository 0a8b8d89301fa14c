"""The person files: UTF-8 CSV (the master), a BOM copy for Excel, and an optional lossy CP932 copy.

RFC 4180: comma separated, CRLF line ends, fields with a comma, quote or line break quoted and
quotes doubled, one header row of field keys. Dates are ISO 8601 (西暦); codes stay strings.
The master is UTF-8 without a BOM; the Excel copy is the same bytes after a BOM (Excel guesses
CP932 without one). CP932 is never the master: the CP932 copy replaces what it cannot hold
(``name_fallback`` for names, 〓 elsewhere) and every such row is listed in the manifest.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from victim_support.charset import cp932_text, private_use

BOM = b"\xef\xbb\xbf"


@dataclass
class Cp932Copy:
    data: bytes
    #: ``{"person_ref": …, "fields": [...]}`` for every row that lost something.
    lossy_rows: list[dict[str, object]] = field(default_factory=list)


def _render(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def persons_csv(columns: tuple[str, ...], rows: list[list[str]]) -> bytes:
    """The master file: UTF-8 without BOM."""
    return _render(columns, rows).encode("utf-8")


def excel_copy(master: bytes) -> bytes:
    """The same bytes with a BOM, so Excel reads UTF-8."""
    return BOM + master


def cp932_copy(columns: tuple[str, ...], rows: list[list[str]]) -> Cp932Copy:
    """A lossy CP932 file; names use ``name_fallback`` where the registered form cannot be held."""
    ref_ix = columns.index("person_ref")
    name_ix = columns.index("name") if "name" in columns else None
    fallback_ix = columns.index("name_fallback") if "name_fallback" in columns else None
    out_rows = []
    lossy: list[dict[str, object]] = []
    for row in rows:
        new_row = []
        lost = []
        for i, value in enumerate(row):
            text, was_lossy = cp932_text(value)
            if was_lossy:
                lost.append(columns[i])
                if i == name_ix and fallback_ix is not None and row[fallback_ix]:
                    text = cp932_text(row[fallback_ix])[0]
            new_row.append(text)
        if lost:
            lossy.append({"person_ref": row[ref_ix], "fields": lost})
        out_rows.append(new_row)
    return Cp932Copy(_render(columns, out_rows).encode("cp932"), lossy)


def private_use_report(columns: tuple[str, ...], rows: list[list[str]]) -> list[dict[str, object]]:
    """Private-use (MJ+ / 外字) code points per row and field, so the receiver can map them."""
    ref_ix = columns.index("person_ref")
    found = []
    for row in rows:
        for i, value in enumerate(row):
            if not value.isascii():
                points = private_use(value)
                if points:
                    found.append({"person_ref": row[ref_ix], "field": columns[i], "code_points": points})
    return found
