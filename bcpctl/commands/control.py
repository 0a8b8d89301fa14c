"""``control ship|status``: the control state (drill history, approvals, tokens, audit chain) at every site."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.options import common_options, config_option
from dc.errors import ProblemFound, UsageError


@click.group()
def control() -> None:
    """The control state at both sites: shipped to the offsite, promoted there at a failover."""


def _age(seconds: float | None) -> str:
    from dc.duration import format_duration

    return "—" if seconds is None else format_duration(seconds)


@control.command("ship")
@config_option()
@click.option("--site", "sites", multiple=True, help="Only this offsite site (repeatable; default: every one).")
@common_options
def control_ship(config_path: str, sites: tuple[str, ...]) -> None:
    """Copy the control database into the primary's repository and replicate it to the offsite.

    The scheduled replication does this every cycle; needs the repository passphrase (the copy
    is an encrypted backup), the shipping itself needs no key. Exit 1 if a site was not reached.
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from failover.controlplane import control_plane

    config, path = load_config(config_path)
    for site in sites:
        if site not in config.offsite_sites:
            raise UsageError(f"'{site}' is not an offsite site (offsite: {', '.join(config.offsite_sites)})")
    shipped = control_plane(config, path.parent).replicate(now=utcnow(), sites=list(sites) or None)

    def render(console: Console, d: dict[str, Any]) -> None:
        copy = d["copy"]
        if copy:
            console.print(
                f"control state copied ({(copy['snapshot_id'] or '')[:8]}, {copy['time']}), "
                f"{d['bytes_added']} bytes added, {d['forgotten']} older copies forgotten"
            )
        for site, newest in d["newest"].items():
            console.print(f"  {site}: newest copy {newest['time'] if newest else 'none'}")
        for note in d["notes"]:
            console.print(note)
        for problem in d["problems"]:
            console.print(f"[red]not shipped[/red] {problem}")

    output.current().result(shipped, render)
    if shipped.problems:
        raise ProblemFound(f"control state not shipped to {shipped.problems[0]}")


@control.command("status")
@config_option()
@common_options
def control_status(config_path: str) -> None:
    """The control-plane RPO and the age of each offsite site's copy, read without a key.

    Exit 1 when a copy is older than the RPO (or missing): a disaster now would cost more.
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from failover.controlplane import control_status as status_of

    config, path = load_config(config_path)
    status = status_of(config, path.parent, now=utcnow())

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(f"control state at {d['site']}: {d['database']} ({d['kind']}), RPO {_age(d['rpo_seconds'])}")
        for s in d["sites"]:
            flag = "[green]within RPO[/green]" if s["within_rpo"] else "[red]OVER RPO[/red]"
            newest = s["newest"]["time"] if s["newest"] else "no copy"
            console.print(f"  {s['site']}: {newest}, age {_age(s['age_seconds'])} {flag} {s['problem'] or ''}")

    output.current().result(status, render)
    if not status.ok:
        late = next(s for s in status.sites if not s.within_rpo)
        why = late.problem or ("no copy" if late.newest is None else f"copy {_age(late.age_seconds)} old")
        raise ProblemFound(f"the control state at {late.site} is older than its RPO ({why})")


COMMANDS = [control]
