"""``status``: where production runs, since when, and whether a second site protects it."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from bcpctl import output
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, config_option
from bcpctl.output import jst
from bcpctl.tables import Markup, Table, lines

_LIGHTS = {
    "green": Markup("[green]● 復旧可能 / recoverable[/]"),
    "yellow": Markup("[yellow]● 要確認 / check[/]"),
    "red": Markup("[red]● 復旧不可 / not shown recoverable[/]"),
}


def age(seconds: float | None) -> str:
    from dc.duration import format_duration

    return "—" if seconds is None else f"{format_duration(seconds)} 前 / ago"


def render(console: Console, d: dict[str, Any]) -> None:
    since = f"{jst(d['since'])} から / since" if d["since"] else "構成どおり / as configured (never failed over)"
    mode = Markup(" [red]フェイルオーバー中 / FAILED OVER[/]") if d["failed_over"] else ""
    run = " " + _("(run {run_id})").format(run_id=d["run_id"]) if d["run_id"] else ""
    console.print(
        f"稼働サイト / active site: [bold]{escape(d['active_site'])}[/] ({escape(d['active_site_name'])}){mode}"
    )
    console.print(f"  {since}{run}")
    copy = d["second_copy"]
    where = escape(", ".join(copy["sites"]) or "—")
    if copy["protected"]:
        oldest = f", 最古 / oldest {jst(copy['oldest'])}, {age(copy['oldest_age_seconds'])}" if copy["oldest"] else ""
        console.print(f"第二のコピー / second copy → {where}: [green]保護あり / protected[/]{oldest}")
    else:
        missing = len(copy["unprotected"])
        console.print(
            _(
                "第二のコピー / second copy → {where}: [red]保護なし / UNPROTECTED[/] "
                "({missing} of {systems} system(s): {unprotected})"
            ).format(
                where=where,
                missing=missing,
                systems=len(d["systems"]),
                unprotected=escape(", ".join(copy["unprotected"][:5])),
            )
        )
    table = Table(
        "システム / system",
        "稼働 / running at",
        "最新の復旧点 / newest recovery point",
        "第二のコピー / second copy",
        "判定 / light",
        "理由 / why",
    )
    for s in d["systems"]:
        point = s["recovery_point"]
        second = s["second_copy"]
        copy_lines = (
            [f"{second['site']}: {jst(second['newest'])}", age(second["age_seconds"])] if second["newest"] else ["—"]
        )
        why = [c["text"] for c in s["light"]["criteria"] if c["level"] != "green"]
        table.add_row(
            lines(s["id"], f"{s['business']} ({s['tenant']})"),
            s["running_at"] or "不明 / unknown",
            lines(jst(point["time"]), age(point["age_seconds"])) if point["time"] else "記録なし / none recorded",
            lines(*copy_lines, *([] if s["protected"] else [Markup("[red]保護なし / unprotected[/]")])),
            _LIGHTS[s["light"]["level"]],
            lines(*why) if why else "—",
        )
    console.print(table)
    counts = d["counts"]
    console.print(
        _("green {green} · yellow {yellow} · red {red} — {as_of} 時点 / as of").format(
            green=counts["green"], yellow=counts["yellow"], red=counts["red"], as_of=jst(d["as_of"])
        )
    )
    for warning in d["warnings"]:
        console.print(f"[yellow]注意 / warning:[/] {escape(shown(warning))}")


@click.command("status")
@config_option()
@common_options
def status(config_path: str) -> None:
    """Where production runs now and since when, whether a second site protects it, and per
    system: where it runs, its newest recovery point, its protection and traffic light.

    Read from the control database only: it answers while a site is unreachable. Times are
    JST for people and ISO 8601 with an offset in --json. Exit 0 whatever the lights say.
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from dc.state import open_state
    from monitoring.status import site_status

    config, _path = load_config(config_path)
    output.current().result(site_status(config, open_state(config.control_db), now=utcnow()), render)


COMMANDS = [status]
