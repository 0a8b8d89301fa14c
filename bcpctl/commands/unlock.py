"""``unlock``: remove locks whose holder is gone; refuse live ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options, repo_url_option
from bcpctl.statuslabels import status_text
from dc.errors import N_, ProblemFound

if TYPE_CHECKING:
    from rich.console import Console


@click.command("unlock")
@repo_url_option
@click.option(
    "--force",
    is_flag=True,
    help="Also remove a lock held from another machine (or unreadable) before its TTL ends. "
    "Only once you know that machine's prune is not running: two prunes at once can delete data.",
)
@common_options
def unlock(repo_url: str, force: bool) -> None:
    """Remove stale repository locks (a killed prune's `locks/prune`).

    A lock is stale when its TTL has passed since its holder last renewed it, or when its
    holder ran on this machine and that process is gone (not running, pid reused, or the
    machine rebooted). A lock whose process still runs here is never removed; one held from
    another machine is removed only with --force. Needs no passphrase: locks hold no secret.
    Exit 1 when a lock stays, naming its holder.
    """
    from backup.locks import unlock as remove_stale
    from backup.repository import read_config
    from storage.url import open_backend

    backend = open_backend(repo_url)
    try:
        read_config(backend)  # only a repository has locks worth removing
        report = remove_stale(backend, force=force)
    finally:
        backend.close()

    def render(console: Console, data: dict[str, Any]) -> None:
        if not data["locks"]:
            console.print(_("no locks"))
        for lock in data["locks"]:
            action = _("removed") if lock["removed"] else _("kept")
            console.print(
                _("{action} lock {name} ({state}): {reason}").format(
                    action=action, name=lock["name"], state=status_text(lock["state"]), reason=lock["reason"]
                )
            )

    output.current().result({"locks": report.locks, "probes_removed": report.probes_removed}, render)
    if report.held:
        held = report.held[0]
        advice = "" if held.state == "live" else "; use --force once that machine's prune is gone"
        raise ProblemFound(N_("lock {name} stays: {reason}{advice}"), name=held.name, reason=held.reason, advice=advice)


COMMANDS = [unlock]
