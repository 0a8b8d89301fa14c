"""``monitoring rules``: the alert rules to deploy, every runbook_url an address that opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options
from bcpctl.tables import Table


@click.group("monitoring")
def monitoring() -> None:
    """Prometheus alert rules to deploy, linked to the runbook pages of bcpctl serve."""


def _render(console: Console, d: dict[str, Any]) -> None:
    if d["out"] is None:
        click.echo(d["rules"], nl=False)
        return
    table = Table(_("alert"), "runbook_url")
    for link in d["links"]:
        table.add_row(link["alert"], link["runbook_url"])
    console.print(table)
    console.print(_("{count} rules written to {path}").format(count=len(d["links"]), path=d["out"]), markup=False)


@monitoring.command("rules")
@click.option(
    "--external-url",
    required=True,
    metavar="URL",
    help="Where people reach bcpctl serve, e.g. https://bcp.example.invalid (a proxy's path prefix kept).",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout.")
@common_options
def rules(external_url: str, out: str | None) -> None:
    """Print the shipped alert rules with every runbook_url made absolute: URL/runbook/ja#alert-<name>.

    The rules ship with runbook paths of bcpctl serve (/runbook/ja#alert-…, tested with
    promtool as shipped); deploy this output to Prometheus so that every receiver (e-mail,
    chat, Prometheus's and Grafana's alert pages) shows a link that opens the Japanese
    runbook's section of the alert. Nothing else in the file changes.
    """
    from monitoring.runbooklinks import rendered_rules

    rendered = rendered_rules(external_url)
    if out is not None:
        Path(out).write_text(rendered.text, encoding="utf-8")
    data = {
        "external_url": rendered.external_url,
        "out": out,
        "links": rendered.links,
        "rules": rendered.text if out is None else None,
    }
    output.current().result(data, _render)


COMMANDS = [monitoring]
