"""``demo``: the whole continuity story on embedded defaults (local directories, SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bcpctl import output
from bcpctl.commands.repo import human_bytes
from bcpctl.options import common_options
from dc.errors import ProblemFound


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build the demo consortium (default: ./demo-work/<time>; kept afterwards).",
)
@click.option(
    "--scale", type=float, default=0.05, show_default=True, help="Fraction of each town's population to seed."
)
@common_options
def demo(workdir: str | None, scale: float) -> None:
    """Run the reference consortium end to end on local directories, no servers needed."""
    from bcpctl.demo import default_workdir, run_demo

    out = output.current()
    where = Path(workdir).absolute() if workdir else default_workdir()
    out.notice(f"bcpctl demo: working directory {where}")
    summary = run_demo(where, on_step=lambda name: out.notice(f"==> {name}"), scale=scale)

    def render(console: Console, d: dict[str, Any]) -> None:
        table = Table("step", "result", "seconds")
        for s in d["steps"]:
            table.add_row(s["name"], "[green]ok[/green]" if s["ok"] else "[red]FAILED[/red]", f"{s['seconds']:.1f}")
        console.print(table)
        b = d["backup"]
        console.print(
            f"backed up {human_bytes(b['bytes_in'])} into {human_bytes(b['bytes_stored'])}; "
            f"the next day's incremental added {human_bytes(b['incremental_added_bytes'])}"
        )
        r = d["replication"]
        console.print(f"offsite received {r.get('objects', 0)} ciphertext objects ({human_bytes(r.get('bytes', 0))})")
        verified = sum(x["verified"] for x in d["restores"])
        console.print(f"restored {verified}/{len(d['restores'])} systems at the offsite site, verified")
        console.print(f"everything is in {d['workdir']}")

    out.result(summary, render)
    if not summary.ok:
        raise ProblemFound("the demo found a failing step (see the table above)")


COMMANDS = [demo]
