"""``audit verify``: check the hash chain of the audit log."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.options import common_options


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log of exports."""


@audit.command("verify")
@click.option("--config", "config_path", envvar="BCPCTL_CONFIG", default=None, help="For the control database.")
@click.option("--anchor", default=None, metavar="SEQ:HASH", help="A chain head held elsewhere (bundle envelope).")
@common_options
def audit_verify(config_path: str | None, anchor: str | None) -> None:
    """Verify every entry links to the one before; exit 1 names the first bad entry."""
    from dc.config import load_config
    from dc.state import open_state
    from victim_support import audit as log

    parsed = log.parse_anchor(anchor) if anchor else None
    control_db = load_config(config_path)[0].control_db if config_path else None
    report = log.verify_log(open_state(control_db), parsed)

    def render(console: Console, d: dict[str, Any]) -> None:
        if d["ok"]:
            console.print(f"audit log intact: {d['entries']} entries, head {d['head_seq']}:{d['head_hash']}")
        else:
            console.print(f"[red]audit log broken[/red] at entry {d['first_bad_seq']}: {d['problem']}")

    output.current().result(report, render)
    if not report.ok:
        raise log.broken(report)


COMMANDS = [audit]
