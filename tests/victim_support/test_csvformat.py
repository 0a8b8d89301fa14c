"""RFC 4180 person files, the Excel copy and the lossy CP932 copy."""

from __future__ import annotations

import csv
import io
import random

from victim_support.charset import GETA
from victim_support.csvformat import BOM, cp932_copy, excel_copy, header, persons_csv, private_use_report

COLUMNS = ("person_ref", "household_ref", "name", "name_fallback", "katagaki")
ROWS = [
    ("r1", "h1", "鈴木　一郎", "", ""),
    ("r2", "h1", "\U00020bb7田　花子", "吉田　花子", 'ハイツ"青葉", 201'),
    ("r3", "h2", "\U00029e3d　太郎", "ホッケ　タロウ", "コーポ\U000e0100"),
    ("r4", "h3", "\ue000田　一", "タ　ハジメ", "line\nbreak"),
]


def test_master_is_rfc4180_utf8_without_bom() -> None:
    data = persons_csv(COLUMNS, ROWS)
    assert not data.startswith(BOM)
    text = data.decode("utf-8")
    assert text.startswith("個人参照 (提供先ごとの仮名ID),世帯参照 (提供先ごとの仮名ID),氏名,氏名 (縮退表記),方書\r\n")
    assert '"ハイツ""青葉"", 201"' in text  # quotes doubled, field quoted
    assert list(csv.reader(io.StringIO(text, newline=""))) == [list(header(COLUMNS)), *map(list, ROWS)]


def test_fast_rendering_is_byte_identical_to_the_csv_module() -> None:
    rng = random.Random(4180)
    pieces = ["a", "漢", ",", '"', "\n", "\r", " ", "", "𠮷"]
    rows = [tuple("".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in COLUMNS) for _ in range(3000)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(COLUMNS))
    writer.writerows(rows)
    assert persons_csv(COLUMNS, rows) == buffer.getvalue().encode("utf-8")


def test_excel_copy_is_the_same_bytes_after_a_bom() -> None:
    master = persons_csv(COLUMNS, ROWS)
    assert excel_copy(COLUMNS, ROWS) == BOM + master


def test_cp932_copy_lists_every_lossy_row_and_uses_the_fallback() -> None:
    copy = cp932_copy(COLUMNS, ROWS)
    text = copy.data.decode("cp932")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[1][2] == "鈴木　一郎"
    assert parsed[2][2] == "吉田　花子"  # name_fallback instead of 〓
    assert parsed[3][2] == "ホッケ　タロウ"
    assert parsed[3][4] == "コーポ"  # the selector dropped
    assert parsed[4][2] == "タ　ハジメ"
    assert copy.lossy_rows == [
        {"person_ref": "r2", "fields": ["name"]},
        {"person_ref": "r3", "fields": ["name", "katagaki"]},
        {"person_ref": "r4", "fields": ["name"]},
    ]
    assert GETA not in parsed[2][2]


def test_private_use_characters_are_reported() -> None:
    assert private_use_report(COLUMNS, ROWS) == [{"person_ref": "r4", "field": "name", "code_points": ["U+E000"]}]


def test_every_copy_has_the_japanese_header_a_person_reads() -> None:
    """Field keys are for programs (they stay in the manifest); the header row is Japanese in every copy."""
    for data, encoding in ((persons_csv(COLUMNS, ROWS), "utf-8"), (cp932_copy(COLUMNS, ROWS).data, "cp932")):
        first = next(csv.reader(io.StringIO(data.decode(encoding), newline="")))
        assert first == [
            "個人参照 (提供先ごとの仮名ID)",
            "世帯参照 (提供先ごとの仮名ID)",
            "氏名",
            "氏名 (縮退表記)",
            "方書",
        ]
        assert not set(first) & set(COLUMNS)
