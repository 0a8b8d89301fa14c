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
from bcpctl.tables import Markup, Table, markup
from dc.errors import ProblemFound


def _render(console: Console, d: dict[str, Any]) -> None:
    table = Table("#", _("step"), _("result"), _("seconds"))
    for number, s in enumerate(d["steps"], 1):
        result = (
            Markup(_("[green]ok[/green]"))
            if s["ok"]
            else markup(_("[red]FAILED[/red] {error}"), error=s.get("error") or "")
        )
        table.add_row(str(number), s["name"], result, f"{s['seconds']:.1f}")
    console.print(table)
    if d.get("plan"):
        _render_plan(console, d["plan"])
    if d["failover"]:
        systems = Table(
            _("tenant"),
            _("system"),
            _("RTO / target"),
            _("RPO / target"),
            _("verified"),
            title=_("failover at the offsite"),
        )
        for s in d["failover"]:
            systems.add_row(
                s["tenant"],
                s["system"],
                f"{duration_text(s['rto_seconds'])} / {duration_text(s['rto_target_seconds'])}",
                f"{duration_text(s['rpo_seconds'])} / {duration_text(s['rpo_target_seconds'])}",
                Markup(_("[green]yes[/green]")) if s["verified"] else Markup(_("[red]NO[/red]")),
            )
        console.print(systems)
    b, r, e = d["backup"], d["replication"], d["export"]
    console.print(
        _(
            "backed up {bytes_in} into {bytes_stored}; the next day's incremental added {incremental_added_bytes}"
        ).format(
            bytes_in=human_bytes(b["bytes_in"]),
            bytes_stored=human_bytes(b["bytes_stored"]),
            incremental_added_bytes=human_bytes(b["incremental_added_bytes"]),
        )
    )
    console.print(
        _("offsite received {objects} ciphertext objects ({bytes}), verified without a key: {verified}").format(
            objects=r.get("objects", 0),
            bytes=human_bytes(r.get("bytes", 0)),
            verified=_("yes") if r.get("verified_without_key") else _("NO"),
        )
    )
    if e:
        console.print(
            _(
                "export {request}: {rows} rows for {partner} ({areas}), {excluded_rows} protected rows withheld; "
                "opened by the partner: {opened}; audit chain: {audit}"
            ).format(
                request=e["request"],
                rows=e["rows"],
                partner=e["partner"],
                areas=", ".join(e["areas"]),
                excluded_rows=e["excluded_rows"],
                opened=_("yes") if e["opened_by_partner"] else _("NO"),
                audit=_("verified") if e["audit_ok"] else _("BROKEN"),
            )
        )
    cp, status = d.get("control_plane") or {}, d.get("status") or {}
    if cp:
        console.print(
            _(
                "control state at {active_site}: {source}, control-plane RPO {rpo_seconds}, audit chain across the "
                "failover: {audit}; {statement}"
            ).format(
                active_site=cp["active_site"],
                source=cp["source"],
                rpo_seconds=duration_text(cp["rpo_seconds"]),
                audit=_("verified") if cp["audit_verified_across_failover"] else _("BROKEN"),
                statement=cp["lost_audit_entries"]["statement"],
            )
        )
        console.print(
            _("active site {site}, protected by a second site: {protected}").format(
                site=status.get("active_site"), protected=_("yes") if status.get("protected") else _("NO")
            )
        )
    if cost := d.get("cost"):
        towns = "; ".join(
            f"{t['name']} {t['before_yen']:,} → {t['yen']:,} ({t['saving_pct']}%)" for t in cost["tenants"]
        )
        console.print(
            _("cost split: {before_total_yen} → {total_yen} yen ({saving} less): {towns}").format(
                before_total_yen=f"{cost['before_total_yen']:,}",
                total_yen=f"{cost['total_yen']:,}",
                saving=f"{cost['saving_pct']}%",
                towns=towns,
            )
        )
        console.print(_("cost sheet: {sheet}").format(sheet=cost["sheet"]))
    console.print(_("report: {report_path}").format(report_path=d["report_path"]))
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
    console.print(_("everything is in {workdir}").format(workdir=d["workdir"]))


def _render_plan(console: Console, plan: dict[str, Any]) -> None:
    table = Table(
        _("tier"),
        "№",
        "部会",
        _("business"),
        "RPO / RTO",
        _("after"),
        title=_("recovery plan of {name}: {systems} systems").format(name=plan["name"], systems=plan["systems"]),
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
    out.notice(_("bcpctl demo: working directory {where}").format(where=where))

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
