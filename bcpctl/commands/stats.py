"""``stats``: how big snapshots are, restored or stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.commands.repo import human_bytes
from bcpctl.i18n import _
from bcpctl.options import as_of_option, common_options, repo_options
from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

    from backup.stats import StatsMode


@click.command("stats")
@click.argument("snapshot_refs", metavar="[SNAPSHOT]...", nargs=-1)
@click.option("--system", default=None, help="Only this system's snapshots.")
@click.option(
    "--mode",
    type=click.Choice(["restore-size", "raw-data"]),
    default="restore-size",
    show_default=True,
    help="restore-size: the bytes a restore of each snapshot writes, added up; raw-data: the unique "
    "blobs they reference, once each (plaintext and stored size).",
)
@repo_options
@as_of_option
@common_options
def stats(
    snapshot_refs: tuple[str, ...],
    system: str | None,
    mode: StatsMode,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """Sizes of SNAPSHOTs (default: every snapshot, or every one of --system)."""
    from backup.snapref import find_snapshot
    from backup.snapshot import list_snapshots
    from backup.stats import snapshot_stats

    if snapshot_refs and system:
        raise UsageError(N_("give snapshots or --system, not both"))
    with session.repository(repo_url, password_file, escrow=escrow, read_only=True, as_of=as_of) as r:
        if snapshot_refs:
            chosen = list({s.id: s for s in (find_snapshot(r, ref) for ref in snapshot_refs)}.values())
        else:
            chosen = list_snapshots(r, system=system)
        result = snapshot_stats(r, chosen, mode)

    def render(console: Console, d: dict[str, Any]) -> None:
        size = _("restore size:") if d["mode"] == "restore-size" else _("raw data:")
        lines = [
            _("snapshots:    {snapshots}").format(snapshots=d["snapshots"]),
            _("files:        {files}").format(files=d["files"]),
            _("dirs:         {dirs}").format(dirs=d["dirs"]),
            f"{size:<13} {human_bytes(d['bytes'])}",
        ]
        if d["mode"] == "raw-data":
            lines += [
                _("blobs:        {blobs}").format(blobs=d["blobs"]),
                _("stored:       {stored_bytes}").format(stored_bytes=human_bytes(d["stored_bytes"])),
            ]
            if d["bytes"]:
                lines.append(f"stored/raw:   {d['stored_bytes'] / d['bytes']:.2f}")
        console.print("\n".join(lines), markup=False)

    output.current().result(result, render)
    if result.blobs_missing:
        output.current().warn(
            _("{blobs_missing} blob(s) are in no index: run 'bcpctl check'").format(blobs_missing=result.blobs_missing)
        )


COMMANDS = [stats]
