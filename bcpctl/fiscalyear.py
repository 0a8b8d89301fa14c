"""A 年度's bills by each town's months in the consortium, as people read them (JST dates).

Shared by ``tenant plan-join|join --from`` and ``dc cost-split --fiscal-year``; ``--json`` keeps
the ISO 8601 times with their offset (dc/proration.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from bcpctl.i18n import _
from bcpctl.tables import Table
from dc.clock import JST


def _day(value: Any) -> str:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime("%Y-%m-%d")


def render_fiscal_year(console: Console, year: dict[str, Any]) -> None:
    """The year's contract and every town's bill: months in, first month billed, yen, change."""
    last = datetime.fromisoformat(str(year["end"])) if not isinstance(year["end"], datetime) else year["end"]
    console.print(
        _("fiscal year {year} ({start} to {end}, JST): contract {total} yen").format(
            year=year["fiscal_year"],
            start=_day(year["start"]),
            end=_day(last - timedelta(days=1)),
            total=f"{year['total_yen']:,}",
        )
    )
    table = Table(
        _("tenant"), _("name"), _("months"), _("billed from"), _("this year"), _("without joiners"), _("change")
    )
    for t in year["tenants"]:
        table.add_row(
            t["tenant"],
            t["name"],
            str(t["months"]),
            _day(t["billed_from"]) if t["billed_from"] else "-",
            f"{t['yen']:,}",
            f"{t['without_joiners_yen']:,}" if t["without_joiners_yen"] is not None else "-",
            f"{t['change_yen']:+,}" if t["change_yen"] is not None else (_("joins") if t["joiner"] else "-"),
        )
    console.print(table)
    if year["beyond_term"]:
        console.print(_("months past the cost term: the term's amounts repeat, as in the projection"))
    if year["members_never_pay_more"]:
        console.print(_("the agreement caps every member at its bill without the joiners"))
