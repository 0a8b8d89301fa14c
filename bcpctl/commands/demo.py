"""``demo``: the whole continuity story on embedded defaults (local directories, SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.repo import human_bytes
from bcpctl.commands.runs import duration_text
from bcpctl.i18n import _
from bcpctl.options import common_options
from bcpctl.params import FiniteFloat
from bcpctl.tables import Table
from dc.errors import ProblemFound


def _render(console: Console, d: dict[str, Any]) -> None:
    table = Table("#", "step", "result", "seconds")
    for number, s in enumerate(d["steps"], 1):
        result = "[green]ok[/green]" if s["ok"] else f"[red]FAILED[/red] {s.get('error') or ''}"
        table.add_row(str(number), s["name"], result, f"{s['seconds']:.1f}")
    console.print(table)
    if d.get("plan"):
        _render_plan(console, d["plan"])
    if d["failover"]:
        systems = Table("tenant", "system", "RTO / target", "RPO / target", "verified", title="failover at the offsite")
        for s in d["failover"]:
            systems.add_row(
                s["tenant"],
                s["system"],
                f"{duration_text(s['rto_seconds'])} / {duration_text(s['rto_target_seconds'])}",
                f"{duration_text(s['rpo_seconds'])} / {duration_text(s['rpo_target_seconds'])}",
                "[green]yes[/green]" if s["verified"] else "[red]NO[/red]",
            )
        console.print(systems)
    b, r, e = d["backup"], d["replication"], d["export"]
    console.print(
        f"backed up {human_bytes(b['bytes_in'])} into {human_bytes(b['bytes_stored'])}; "
        f"the next day's incremental added {human_bytes(b['incremental_added_bytes'])}"
    )
    console.print(
        f"offsite received {r.get('objects', 0)} ciphertext objects ({human_bytes(r.get('bytes', 0))}), "
        f"verified without a key: {'yes' if r.get('verified_without_key') else 'NO'}"
    )
    if e:
        console.print(
            f"export {e['request']}: {e['rows']} rows for {e['partner']} ({', '.join(e['areas'])}), "
            f"{e['excluded_rows']} protected rows withheld; opened by the partner: "
            f"{'yes' if e['opened_by_partner'] else 'NO'}; audit chain: {'verified' if e['audit_ok'] else 'BROKEN'}"
        )
    cp, status = d.get("control_plane") or {}, d.get("status") or {}
    if cp:
        console.print(
            f"control state at {cp['active_site']}: {cp['source']}, control-plane RPO "
            f"{duration_text(cp['rpo_seconds'])}, audit chain across the failover: "
            f"{'verified' if cp['audit_verified_across_failover'] else 'BROKEN'}; "
            f"{cp['lost_audit_entries']['statement']}"
        )
        console.print(
            f"active site {status.get('active_site')}, protected by a second site: "
            f"{'yes' if status.get('protected') else 'NO'}"
        )
    if cost := d.get("cost"):
        towns = "; ".join(
            f"{t['name']} {t['before_yen']:,} → {t['yen']:,} ({t['saving_pct']}%)" for t in cost["tenants"]
        )
        console.print(
            f"cost split: {cost['before_total_yen']:,} → {cost['total_yen']:,} yen "
            f"({cost['saving_pct']}% less): {towns}"
        )
        console.print(f"cost sheet: {cost['sheet']}")
    console.print(f"report: {d['report_path']}")
    reports = d.get("reports") or {}
    if reports.get("failover pdf"):
        console.print(
            _("failover report (Japanese and English, printable): {path}").format(path=reports["failover pdf"])
        )
    for name, path in sorted(reports.items()):
        if name.startswith("failover ja:"):
            console.print(
                _("drill report of {tenant} (訓練実施報告): {path}").format(tenant=name.split(":", 1)[1], path=path)
            )
    console.print(f"everything is in {d['workdir']}")


def _render_plan(console: Console, plan: dict[str, Any]) -> None:
    table = Table(
        "tier",
        "№",
        "部会",
        "business",
        "RPO / RTO",
        "after",
        title=f"recovery plan of {plan['name']}: {plan['systems']} systems",
    )
    for group in plan["groups"]:
        for s in group["systems"]:
            table.add_row(
                str(group["tier"]),
                s["number"] or "",
                s["group"] or "",
                s["business"],
                f"{duration_text(s['rpo_seconds'])} / {duration_text(s['rto_seconds'])}",
                ", ".join(d.removeprefix(f"{plan['tenant']}-") for d in s["depends_on"]),
            )
    console.print(table)


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build the demo consortium (default: ./demo-work/<time>; kept afterwards).",
)
@click.option(
    "--scale",
    type=FiniteFloat(0.001, 1.0),
    default=1.0,
    show_default=True,
    help="Fraction of each town's population to seed.",
)
@click.option(
    "--all-systems",
    is_flag=True,
    help="Run every system of every town (the 33 業務 x 4); by default one town's all and a few of the others'.",
)
@common_options
def demo(workdir: str | None, scale: float, all_systems: bool) -> None:
    """Run the reference consortium's worst day end to end on local directories, no servers needed."""
    from bcpctl.demo import default_workdir, run_demo

    out = output.current()
    where = Path(workdir).absolute() if workdir else default_workdir()
    out.notice(f"bcpctl demo: working directory {where}")

    def banner(number: int, total: int, name: str) -> None:
        out.notice(f"==> [{number}/{total}] {name}")

    @contextmanager
    def progress(description: str) -> Iterator[Callable[[int], None]]:
        with out.progress(description) as bar:
            yield bar.advance

    summary = run_demo(where, scale=scale, all_systems=all_systems, on_step=banner, progress=progress)
    out.result(summary, _render)
    if not summary.ok:
        failed = next((s for s in summary.steps if not s.ok), None)
        raise ProblemFound(f"demo step failed: {failed.name}: {failed.error}" if failed else "the demo did not finish")


COMMANDS = [demo]
