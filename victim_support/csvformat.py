"""The person files: UTF-8 CSV (the master), a BOM copy for Excel, and an optional lossy CP932 copy.

RFC 4180: comma separated, CRLF line ends, fields with a comma, quote or line break quoted and
quotes doubled, one header row of the fields' Japanese labels (``fields.FIELDS``; the manifest
maps each label to its field key). Dates are ISO 8601 (西暦); codes stay strings.
The master is UTF-8 without a BOM; the Excel copy is the same bytes after a BOM (Excel guesses
CP932 without one). CP932 is never the master: the CP932 copy replaces what it cannot hold
(``name_fallback`` for names, 〓 elsewhere) and every such row is listed in the manifest.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from victim_support.charset import cp932_text, private_use
from victim_support.fields import FIELDS

BOM = b"\xef\xbb\xbf"


@dataclass
class Cp932Copy:
    data: bytes
    #: ``{"person_ref": …, "fields": [...]}`` for every row that lost something.
    lossy_rows: list[dict[str, object]] = field(default_factory=list)


def _quoted(row: tuple[str, ...]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(row)
    return buffer.getvalue()


def header(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The header row a person reads: each field's Japanese label, in column order."""
    return tuple(FIELDS[key] for key in columns)


def _render(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """RFC 4180 text. Rows needing no quoting (almost all) are joined directly; the rest go
    through the csv module, so the output is byte-identical to ``csv.writer`` (tested)."""
    separators = len(columns) - 1
    lines = [_quoted(header(columns))]
    for row in rows:
        line = ",".join(row)
        if line.count(",") != separators or '"' in line or "\n" in line or "\r" in line:
            lines.append(_quoted(row))
        else:
            lines.append(line + "\r\n")
    return "".join(lines)


def persons_csv(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    """The master file: UTF-8 without BOM."""
    return _render(columns, rows).encode("utf-8")


#: What makes Excel read a CSV field as a formula (``=HYPERLINK(…)`` sends the row away on a
#: click, ``=cmd|…`` runs a program); a tab or CR first is skipped by Excel before it looks.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ExcelRows:
    rows: list[tuple[str, ...]]
    #: ``{"person_ref": …, "fields": [...]}`` for every row where a value was given a leading ``'``.
    guarded_rows: list[dict[str, object]] = field(default_factory=list)


def excel_rows(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> ExcelRows:
    """The rows for the files Excel opens (the BOM and CP932 copies): a value Excel would run
    as a formula gets a leading ``'`` (OWASP's advice; Excel shows it as text). A resident's
    方書 or name is free text a stranger can register, and the partner's PC is on the LGWAN.
    The master ``persons.csv`` keeps every value as it is; the manifest lists guarded rows."""
    ref_ix = columns.index("person_ref")
    out: list[tuple[str, ...]] = []
    guarded: list[dict[str, object]] = []
    for row in rows:
        hits = [i for i, value in enumerate(row) if value.startswith(FORMULA_START)]
        if hits:
            guarded.append({"person_ref": row[ref_ix], "fields": [columns[i] for i in hits]})
            row = tuple("'" + value if i in hits else value for i, value in enumerate(row))
        out.append(row)
    return ExcelRows(out, guarded)


def excel_copy(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    """The file with a BOM, so Excel reads UTF-8; ``rows`` from :func:`excel_rows`."""
    return BOM + persons_csv(columns, rows)


def cp932_copy(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Cp932Copy:
    """A lossy CP932 file; names use ``name_fallback`` where the registered form cannot be held."""
    ref_ix = columns.index("person_ref")
    name_ix = columns.index("name") if "name" in columns else None
    fallback_ix = columns.index("name_fallback") if "name_fallback" in columns else None
    out_rows: list[tuple[str, ...]] = []
    lossy: list[dict[str, object]] = []
    for row in rows:
        # One check per row; only the few rows that fail are examined field by field.
        joined = "\x1f".join(row)
        if joined.count("\x1f") == len(row) - 1:  # no value holds the separator itself
            text, was_lossy = cp932_text(joined)
            if not was_lossy:
                out_rows.append(row if text == joined else tuple(text.split("\x1f")))
                continue
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
        out_rows.append(tuple(new_row))
    return Cp932Copy(_render(columns, out_rows).encode("cp932"), lossy)


def private_use_report(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[dict[str, object]]:
    """Private-use (MJ+ / 外字) code points per row and field, so the receiver can map them."""
    ref_ix = columns.index("person_ref")
    found: list[dict[str, object]] = []
    if not private_use("".join(map("".join, rows))):  # one scan for the usual case: none at all
        return found
    for row in rows:
        if not private_use("".join(row)):
            continue
        for i, value in enumerate(row):
            points = private_use(value)
            if points:
                found.append({"person_ref": row[ref_ix], "field": columns[i], "code_points": points})
    return found
