"""The cost split as a sheet a 協議会 meeting can hand out: Japanese HTML, and xlsx where openpyxl is.

Every amount is the integer yen of dc/costsplit.py, so the printed columns add up exactly; the
sheet only lays them out (before and after per town, the rule, subsidies as negative lines, the
ten-year projection and the start-date effect).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from dc.costsplit import CostSplit
from dc.errors import N_, UsageError


def _yen(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _rule_text(rule: dict[str, float]) -> str:
    total = sum(rule.values()) or 1
    names = {"equal": "均等割", "population": "人口割", "usage": "利用量割"}
    return " + ".join(f"{names[k]} {v / total:.0%}" for k, v in rule.items() if v)


def sheet_rows(split: CostSplit) -> list[list[Any]]:
    """The per-town table: the same rows in HTML and xlsx."""
    rows: list[list[Any]] = [
        ["団体", "人口", "人口比", "現行 (円)", "移行後 (円)", "削減額 (円)", "削減率", "補助金 (円)",
         f"{split.projection_years}年間 現行", f"{split.projection_years}年間 移行後(補助金控除後)",
         f"{split.projection_years}年間 削減率", "稼働時期の効果 (円)"],
    ]  # fmt: skip
    for t in split.tenants:
        shift = t.go_live or {}
        rows.append(
            [t.name, t.population, round(t.population_share * 100, 2), t.before_yen, t.yen, t.saving_yen,
             t.saving_pct, t.subsidy_yen, t.projection_before_yen, t.projection_after_yen,
             t.projection_saving_pct, shift.get("yen")]
        )  # fmt: skip
    rows.append(
        ["合計", sum(t.population for t in split.tenants), 100.0, split.before_total_yen, split.total_yen,
         split.saving_yen, split.saving_pct, sum(t.subsidy_yen for t in split.tenants),
         sum(t.projection_before_yen or 0 for t in split.tenants), sum(t.projection_after_yen for t in split.tenants),
         None, sum(int((t.go_live or {}).get("yen") or 0) for t in split.tenants)]  # type: ignore[call-overload]
    )  # fmt: skip
    return rows


def render_html(split: CostSplit, consortium: str) -> str:
    """The sheet as one self-contained Japanese HTML page."""
    rows = sheet_rows(split)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in rows[0])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(v))}</td>" if i == 0 else f'<td class="n">{_pct(v) if i in (2, 6, 10) else _yen(v)}</td>'
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows[1:]
    )
    categories = "".join(
        f"<tr><td>{escape(str(c['category']))}</td><td class='n'>{_yen(int(c['yen']))}</td>"  # type: ignore[call-overload]
        f"<td>{escape(_rule_text(c['rule']))}</td></tr>"  # type: ignore[arg-type]
        for c in split.categories
    )
    before = "".join(
        f"<tr><td>{escape(str(c['category']))}</td><td class='n'>{_yen(int(c['yen']))}</td></tr>"  # type: ignore[call-overload]
        for c in split.before_categories
    )
    subsidies = "".join(
        f"<tr><td>{escape(str(s['name']))}</td><td class='n'>{_yen(int(s['yen']))}</td><td>{s['year']}年目</td></tr>"  # type: ignore[call-overload]
        for s in split.subsidies
    )
    years = "".join(
        f"<tr><td>{escape(t.name)}</td>"
        + "".join(f"<td class='n'>{_yen(r.saving_yen)}</td>" for r in t.projection)
        + "</tr>"
        for t in split.tenants
    )
    year_head = "".join(f"<th>{r.year}年目</th>" for r in split.tenants[0].projection)
    period = f"{split.period} の月額" if split.period else f"{split.term['start']} から {split.term['years']} 年間"
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>{escape(consortium)} 費用按分表</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin:.5em 0 1.2em}}
td,th{{border:1px solid #999;padding:.2em .5em}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}</style>
</head><body>
<h1>{escape(consortium)} 費用按分表(割り勘)</h1>
<p>対象期間: {escape(period)}。按分方法: {escape(_rule_text(split.rule))}
(利用量割の根拠: {escape(split.resource_basis)}。訓練の回数・時間は按分に使わない)。
金額は円単位の整数で、各団体の額の合計は総額に一致する(最大剰余法)。</p>
<h2>団体別 現行と移行後</h2>
<table><tr>{head}</tr>{body}</table>
<h2>移行後の費目(共同契約)</h2>
<table><tr><th>費目</th><th>金額 (円)</th><th>按分</th></tr>{categories}
<tr><th>合計</th><td class='n'>{_yen(split.total_yen)}</td><td></td></tr></table>
<h2>現行の費目(各団体の契約の合計)</h2>
<table><tr><th>費目</th><th>金額 (円)</th></tr>{before}
<tr><th>合計</th><td class='n'>{_yen(split.before_total_yen)}</td></tr></table>
<h2>補助金(減額項目)</h2>
<table><tr><th>名称</th><th>金額 (円)</th><th>受領年</th></tr>{subsidies}</table>
<h2>{split.projection_years}年間の削減額の見通し(団体別・年別、円)</h2>
<table><tr><th>団体</th>{year_head}</tr>{years}</table>
</body></html>
"""


def write_sheet(split: CostSplit, consortium: str, path: Path) -> Path:
    """Write the sheet: ``.xlsx`` through openpyxl when it is installed, else HTML."""
    if path.suffix.lower() == ".xlsx":
        return _write_xlsx(split, consortium, path)
    path.write_text(render_html(split, consortium), encoding="utf-8")
    return path


def _write_xlsx(split: CostSplit, consortium: str, path: Path) -> Path:
    try:
        from openpyxl import Workbook
    except ImportError:
        raise UsageError(N_("an .xlsx sheet needs openpyxl (pip install openpyxl); write .html instead")) from None
    book = Workbook()
    sheet = book.create_sheet("団体別", 0)
    book.remove(book.worksheets[1])  # the default empty sheet
    sheet.append([f"{consortium} 費用按分表", _rule_text(split.rule)])
    for line in sheet_rows(split):
        sheet.append(line)
    for cells in sheet.iter_rows(min_row=3):
        for cell in cells[1:]:
            if isinstance(cell.value, int):
                cell.number_format = "#,##0"
    years = book.create_sheet(f"{split.projection_years}年間")
    years.append(["団体", "年", "現行", "移行後", "補助金", "削減額"])
    for t in split.tenants:
        for r in t.projection:
            years.append([t.name, r.year, r.before_yen, r.after_yen, r.subsidy_yen, r.saving_yen])
    book.save(path)
    return path
