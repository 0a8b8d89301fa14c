"""``mount``: snapshots as a read-only file system."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bcpctl import output, session
from bcpctl.i18n import _
from bcpctl.options import as_of_option, common_options, repo_options
from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from datetime import datetime


@click.command("mount")
@click.argument("args", metavar="SNAPSHOT|--all MOUNTPOINT", nargs=-1)
@click.option("--all", "all_snapshots", is_flag=True, help="Every snapshot: MOUNTPOINT/SYSTEM/TIME_ID/…")
@click.option("--system", default=None, help="With --all: only this system's snapshots.")
@repo_options
@as_of_option
@common_options
def mount(
    args: tuple[str, ...],
    all_snapshots: bool,
    system: str | None,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """Mount SNAPSHOT (or --all) read-only at MOUNTPOINT through FUSE, until unmounted.

    Runs in the foreground; Ctrl-C or 'umount MOUNTPOINT' ends it. Every read is decrypted
    and authenticated blob by blob; nothing can be written. Where /dev/fuse or libfuse is
    missing, exit 2 saying so.
    """
    from backup.mount import check_fuse, check_mountpoint, serve
    from backup.snapref import find_snapshot
    from backup.snapshot import list_snapshots

    wanted = 1 if all_snapshots else 2
    if len(args) != wanted:
        raise UsageError(N_("give SNAPSHOT MOUNTPOINT, or --all MOUNTPOINT"))
    if system and not all_snapshots:
        raise UsageError(N_("--system selects snapshots for --all"))
    mountpoint = args[-1]
    check_fuse()
    check_mountpoint(mountpoint)
    with session.repository(repo_url, password_file, escrow=escrow, read_only=True, as_of=as_of) as r:
        chosen = list_snapshots(r, system=system) if all_snapshots else [find_snapshot(r, args[0])]
        output.current().notice(
            _("serving {chosen} snapshot(s) at {mountpoint}; Ctrl-C or umount ends it").format(
                chosen=len(chosen), mountpoint=mountpoint
            )
        )
        serve(r, chosen, mountpoint, each_in_own_dir=all_snapshots)
    output.current().result(
        {"mountpoint": mountpoint, "snapshots": [s.id for s in chosen], "unmounted": True},
        lambda console, d: console.print(_("unmounted {mountpoint}").format(mountpoint=d["mountpoint"]), markup=False),
    )


COMMANDS = [mount]
