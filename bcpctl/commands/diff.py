"""``diff``: what changed between two snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.i18n import _
from bcpctl.options import as_of_option, common_options, repo_options
from bcpctl.tables import Table

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

_MARK = {"added": "+", "removed": "-", "changed": "M"}


@click.command("diff")
@click.argument("before_ref", metavar="SNAPSHOT1")
@click.argument("after_ref", metavar="SNAPSHOT2")
@click.argument("path", required=False, default="")
@repo_options
@as_of_option
@common_options
def diff(
    before_ref: str,
    after_ref: str,
    path: str,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """Show what SNAPSHOT2 added, removed and changed since SNAPSHOT1 (beneath PATH if given).

    A change names what differs: type, content (the recorded SHA-256), size, mode, owner or
    link target. For database snapshots, every table whose recorded row count differs is
    listed with both counts. Differences are not an error: exit 0.
    """
    from backup.diff import diff_snapshots
    from backup.patterns import snapshot_path
    from backup.snapref import find_snapshot

    snapshot_path(path)
    with session.repository(repo_url, password_file, escrow=escrow, sync=False, read_only=True, as_of=as_of) as r:
        result = diff_snapshots(r, find_snapshot(r, before_ref), find_snapshot(r, after_ref), path)

    def render(console: Console, d: dict[str, Any]) -> None:
        from backup.browse import shown

        for change in d["changes"]:
            what = f"  ({', '.join(change['what'])})" if change["what"] else ""
            console.print(f"{_MARK[change['change']]}  {shown(change['path'])}{what}", markup=False)
        if d["tables"]:
            table = Table(_("table"), _("rows before"), _("rows after"), _("change"), keys=(_("table"),))
            for t in d["tables"]:
                before = "—" if t["rows_before"] is None else str(t["rows_before"])
                after = "—" if t["rows_after"] is None else str(t["rows_after"])
                table.add_row(t["table"], before, after, f"{t['delta']:+d}")
            console.print(table)
        console.print(
            _("{before} → {after}: {added} added, {removed} removed, {changed} changed").format(
                before=d["before"][:8],
                after=d["after"][:8],
                added=d["added"],
                removed=d["removed"],
                changed=d["changed"],
            )
            + (_(", {tables} table(s) with other row counts").format(tables=len(d["tables"])) if d["tables"] else ""),
            markup=False,
        )

    output.current().result(result, render)


COMMANDS = [diff]
