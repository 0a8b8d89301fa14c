"""``persons.xlsx``: the list as an Excel workbook a partner's PC opens without damage.

Excel guesses the type of every CSV field: it drops the leading zeros of a 町字ID or a 郵便番号,
reads a ``person_ref`` such as ``123e45`` as 1.23×10⁴⁷ and all-digit ones as numbers, and turns
番地 ``2-3`` into a date. The workbook leaves Excel nothing to guess: every column except the
two dates is a text cell in a text-formatted (``@``) column, and 生年月日 / 住民となった年月日 are
real dates. Text that looks like a formula (``=…``) is stored as text, never as a formula.

A second sheet (説明) says what each column is, under which law the list was provided, for
which purposes, until when it may be kept and that it must then be deleted — so the duty
travels with every copy of the file, not only with the e-mail that announced it.

XML 1.0 cannot hold most C0 control characters; a value carrying one is written with U+FFFD
in its place, and the row and field are returned so the manifest can list them (the CSV keeps
the original bytes). A value longer than an Excel cell holds (32,767 characters) is cut there
and listed the same way.

Written with XlsxWriter (streaming rows, every string written as a string), read back in the
tests with openpyxl, an independent implementation.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import xlsxwriter

from dc.clock import jst_text
from victim_support.fields import FIELDS
from victim_support.policy import BASES, PURPOSES

#: Columns holding calendar dates (ISO 8601 in the CSV); every other column is text.
DATE_COLUMNS = frozenset(("birth_date", "resident_since"))
#: Excel's 1900 date system miscounts before 1900-03-01 (its phantom 1900-02-29): earlier dates stay text.
_EXCEL_FIRST_SAFE_DATE = date(1900, 3, 1)
TEXT_FORMAT = "@"
DATE_FORMAT = "yyyy-mm-dd"

#: What the 説明 sheet says about each column beyond its label.
FIELD_NOTES: dict[str, str] = {
    "person_ref": "提供元が提供先ごとに作る仮名ID (宛名番号ではない)。照会・回答・削除報告にこの値を使う。文字列",
    "household_ref": "同じ世帯の人に同じ値が付く仮名ID。文字列",
    "name": "住民基本台帳に記録された氏名 (外字はそのまま)",
    "name_fallback": "氏名をCP932で表せる字に置き換えた表記 (外字を含む氏名のみ)",
    "name_kana": "氏名のフリガナ",
    "birth_date": "生年月日 (日付。1900-03-01より前は文字列)",
    "sex": "性別。住民基本台帳の性別コードのまま: 1 = 男、2 = 女、9 = 不明",
    "relationship": "世帯主との続柄",
    "pref": "住所の都道府県",
    "city": "住所の市区町村",
    "machiaza_id": "アドレス・ベース・レジストリの町字ID (先頭の0を含む文字列)",
    "machiaza_name": "住所の町字",
    "banchi": "番地 (「2-3」等も文字列のまま)",
    "katagaki": "方書 (建物名・部屋番号)",
    "postal_code": "郵便番号 (先頭の0を含む文字列)",
    "resident_since": "住民となった年月日 (日付)",
    "phone": "避難行動要支援者名簿に記録された連絡先 (文字列)",
    "support_reason_code": "避難支援等を必要とする事由のコード (文字列)",
    "damage_status": "被災者台帳の住家の被害の状況",
    "certificate_status": "被災者台帳の罹災証明書の交付状況",
    "aid_status": "被災者台帳の援護の実施の状況",
}

DELETION_DUTY = (
    "保有期限を過ぎたら、このファイルと、そこから作った複製・印刷物・抜き書きをすべて消去・廃棄し、"
    "提供元に削除を報告してください (パートナーポータルの「削除の報告」、または署名した削除報告書)。"
    "目的外の利用、第三者への提供、インターネットに接続した端末やクラウドへの保存はできません。"
)


@dataclass(frozen=True)
class Context:
    """What the 説明 sheet states about this list (all of it is also in manifest.json)."""

    basis: str
    purposes: tuple[str, ...]
    from_name: str
    to_name: str
    request_id: str
    as_of: datetime
    built_at: datetime
    expires_at: datetime
    retention_days: int


@dataclass
class Spreadsheet:
    data: bytes
    #: ``{"person_ref": …, "fields": [...]}`` for every row where a control character was replaced.
    replaced_rows: list[dict[str, object]] = field(default_factory=list)
    #: the same for every row with a value longer than a cell holds, cut at :data:`CELL_MAX`.
    truncated_rows: list[dict[str, object]] = field(default_factory=list)


#: The most characters an Excel cell holds; XlsxWriter cuts a longer string there without a word.
CELL_MAX = 32767
#: What XML 1.0 cannot hold (C0 controls other than tab, line feed and carriage return).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: XlsxWriter's options that keep every string a string: never a formula, number or link.
_OPTIONS = {
    "constant_memory": True,  # rows stream to a temporary file: memory stays flat for a whole town
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    "in_memory": False,
}


def _date(value: str) -> date | str:
    """An ISO 8601 date as a date Excel can hold, else the text as it is."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return day if day >= _EXCEL_FIRST_SAFE_DATE else value


def _persons_sheet(
    book: Any, columns: tuple[str, ...], rows: list[tuple[str, ...]]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    sheet = book.add_worksheet("名簿")
    text = book.add_format({"num_format": TEXT_FORMAT})
    day = book.add_format({"num_format": DATE_FORMAT})
    # A cell written without a format takes its column's: text columns are "@", date columns dates.
    for index, key in enumerate(columns):
        width = 12 if key in DATE_COLUMNS else max(10, min(40, len(FIELDS[key]) * 2))
        sheet.set_column(index, index, width, day if key in DATE_COLUMNS else text)
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, [FIELDS[key] for key in columns], book.add_format({"bold": True, "num_format": TEXT_FORMAT}))
    ref_ix = columns.index("person_ref")
    dates = [i for i, key in enumerate(columns) if key in DATE_COLUMNS]
    replaced: list[dict[str, object]] = []
    truncated: list[dict[str, object]] = []
    for number, row in enumerate(rows, start=1):
        values: list[Any] = list(row)
        if _ILLEGAL.search("".join(row)):  # one scan per row; the rare hit is examined field by field
            lost = [columns[i] for i, value in enumerate(row) if _ILLEGAL.search(value)]
            values = [_ILLEGAL.sub("\ufffd", value) for value in row]
            replaced.append({"person_ref": row[ref_ix], "fields": lost})
        if sum(map(len, row)) > CELL_MAX:  # only then can one value be too long for its cell
            cut = [columns[i] for i, value in enumerate(row) if len(value) > CELL_MAX]
            if cut:
                truncated.append({"person_ref": row[ref_ix], "fields": cut})
        for i in dates:
            if values[i]:
                values[i] = _date(values[i])
        for col, value in enumerate(values):
            if isinstance(value, date):
                sheet.write_datetime(number, col, datetime(value.year, value.month, value.day))
            else:
                sheet.write_string(number, col, value)
    return replaced, truncated


def explanation_rows(columns: tuple[str, ...], context: Context) -> list[tuple[str, str]]:
    """The 説明 sheet as (項目, 内容) pairs: the list's legal frame first, then each column."""
    rule = BASES[context.basis]
    purposes = "、".join(f"{PURPOSES[p][0]} ({p})" for p in context.purposes)
    head = [
        ("この名簿について", f"{context.from_name}から{context.to_name}への提供 (依頼番号 {context.request_id})"),
        ("提供の根拠", f"{rule.law} — {rule.title}"),
        ("利用目的", purposes),
        ("データの時点", f"{jst_text(context.as_of)} 時点の住民記録 (遠隔地の複製から作成)"),
        ("作成日時", jst_text(context.built_at)),
        ("保有期限", f"{jst_text(context.expires_at)} まで (作成から{context.retention_days}日)"),
        ("消去の義務", DELETION_DUTY),
        ("", ""),
        ("列見出し (フィールドキー)", "内容"),
    ]
    return head + [(f"{FIELDS[key]} ({key})", FIELD_NOTES[key]) for key in columns]


def _explanation_sheet(book: Any, columns: tuple[str, ...], context: Context) -> None:
    sheet = book.add_worksheet("説明")
    bold = book.add_format({"bold": True, "valign": "top", "text_wrap": True})
    wrap = book.add_format({"valign": "top", "text_wrap": True})
    sheet.set_column(0, 0, 40)
    sheet.set_column(1, 1, 100)
    for number, (label, text) in enumerate(explanation_rows(columns, context)):
        sheet.write_string(number, 0, label, bold)
        sheet.write_string(number, 1, text, wrap)


def persons_xlsx(columns: tuple[str, ...], rows: list[tuple[str, ...]], context: Context) -> Spreadsheet:
    """The workbook: sheet 名簿 (one row per person, Japanese headers) and sheet 説明."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, _OPTIONS)
    created = context.built_at.replace(tzinfo=None)
    title = f"{context.from_name} 提供名簿 {context.request_id}"
    book.set_properties({"title": title, "author": context.from_name, "created": created})
    replaced, truncated = _persons_sheet(book, columns, rows)
    _explanation_sheet(book, columns, context)
    book.close()
    return Spreadsheet(buffer.getvalue(), replaced, truncated)
