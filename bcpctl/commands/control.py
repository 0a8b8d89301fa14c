"""``control ship|keygen|status|standby init``: the control state (approvals, audit chain) at every site."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, config_option
from dc.errors import N_, Message, ProblemFound


@click.group()
def control() -> None:
    """The control state at both sites: shipped to (or streamed to) the second site, promoted there at a failover."""


def _age(seconds: float | None) -> str:
    from dc.duration import format_duration

    return "—" if seconds is None else format_duration(seconds)


@control.command("ship")
@config_option()
@click.option(
    "--site", "sites", multiple=True, help="Only this site of the second copy (repeatable; default: every one)."
)
@common_options
def control_ship(config_path: str, sites: tuple[str, ...]) -> None:
    """One replication cycle from the active site, the control state included.

    SQLite: copy the control database into the active site's repository (needs its passphrase:
    the copy is an encrypted backup) and replicate it keyless. PostgreSQL: a heartbeat through
    the streaming standby, and how far it replayed. The scheduled replication does this every
    cycle. Exit 1 if a site was not reached.
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from failover.control_status import ship_control_state

    config, path = load_config(config_path)
    shipped = ship_control_state(config, path.parent, now=utcnow(), sites=list(sites) or None)

    def render(console: Console, d: dict[str, Any]) -> None:
        copy = d["copy"]
        if copy:
            console.print(
                _(
                    "control state of {source} copied ({snapshot_id}, {time}), {bytes_added} bytes added, "
                    "{forgotten} older copies forgotten"
                ).format(
                    source=d["source"],
                    snapshot_id=(copy["snapshot_id"] or "")[:8],
                    time=output.jst(copy["time"]),
                    bytes_added=d["bytes_added"],
                    forgotten=d["forgotten"],
                )
            )
        for site, newest in d["newest"].items():
            console.print(
                "  "
                + _("{site}: newest copy {time}").format(
                    site=site, time=output.jst(newest["time"]) if newest else _("none")
                )
            )
        for note in d["notes"]:
            console.print(shown(note))
        for problem in d["problems"]:
            console.print(_("[red]not shipped[/red] {problem}").format(problem=shown(problem)))

    output.current().result(shipped, render)
    if shipped.problems:
        raise ProblemFound(N_("control state not shipped to {problems}"), problems=shipped.problems[0])


@control.command("keygen")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False), help="The new private key file (never replaced)."
)
@common_options
def control_keygen(out: str) -> None:
    """Generate the Ed25519 key a site's controller signs its control-state copies with.

    Writes the private key to a new file only its owner can read — set it as
    sites.<site>.control_signing_key_file on that site's controller, never where backup operators
    work — and prints the public key for sites.<site>.control_public_key: a failover then promotes
    only copies that site signed. The repository key does not give this key.
    """
    from failover.copysign import write_new_key

    data = {"file": out, "public_key": write_new_key(out)}

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("signing key written to {file}; its public key (sites.<site>.control_public_key):").format(file=d["file"])
        )
        console.print(d["public_key"])

    output.current().result(data, render)


@control.command("status")
@config_option()
@common_options
def control_status(config_path: str) -> None:
    """The control-plane RPO and the age of the copy at each site of the second copy, read without a key.

    Exit 1 when a copy is older than the RPO (or missing): a disaster now would cost more.
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from failover.control_status import control_status as status_of

    config, path = load_config(config_path)
    status = status_of(config, path.parent, now=utcnow())

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("control state at {site}: {database} ({kind}), RPO {rpo_seconds}").format(
                site=d["site"], database=d["database"], kind=d["kind"], rpo_seconds=_age(d["rpo_seconds"])
            )
        )
        console.print(_("live at {active_site}; its copies:").format(active_site=d["active_site"]))
        for s in d["sites"]:
            flag = _("[green]within RPO[/green]") if s["within_rpo"] else _("[red]OVER RPO[/red]")
            newest = output.jst(s["newest"]["time"]) if s["newest"] else _("no copy")
            console.print(
                "  "
                + _("{site}: {newest}, age {age_seconds} {flag} {problem}").format(
                    site=s["site"],
                    newest=newest,
                    age_seconds=_age(s["age_seconds"]),
                    flag=flag,
                    problem=shown(s["problem"] or ""),
                )
            )

    output.current().result(status, render)
    if not status.ok:
        late = next(s for s in status.sites if not s.within_rpo)
        why = late.problem or ("no copy" if late.newest is None else f"copy {_age(late.age_seconds)} old")
        raise ProblemFound(N_("the control state at {site} is older than its RPO ({why})"), site=late.site, why=why)


@control.group("standby")
def standby() -> None:
    """The streaming standby of a PostgreSQL control database at another site."""


@standby.command("init")
@config_option()
@click.option(
    "--site", default=None, help="The site whose control server becomes the standby (default: the first offsite site)."
)
@click.option(
    "--from", "source", default=None, help="The site it streams from (default: the one whose database is live)."
)
@click.option(
    "--replace",
    is_flag=True,
    help="Rebuild even a data directory holding another cluster (moved aside, never deleted).",
)
@common_options
def standby_init(config_path: str, site: str | None, source: str | None, replace: bool) -> None:
    """Make a site's PostgreSQL control server a streaming standby of the live control database.

    Checks the live server's settings (wal_level, wal_log_hints or checksums, full_page_writes,
    WAL senders and slots), creates the replication slot bcpctl_<site> there, then copies the
    cluster with pg_basebackup — or brings an earlier copy of it back with pg_rewind — into
    sites.<site>.control_server.data_dir, starts the server and waits until it streams. Runs
    the PostgreSQL programs on this machine: run it where that data directory is. Idempotent:
    a standby that already streams is only reconfigured. Exit 1 if it does not stream.
    """
    from dc.config import load_config
    from failover.control_standby import setup_standby

    config = load_config(config_path)[0]
    report = setup_standby(config, site=site, source=source, replace=replace)

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("control server of {site}: standby of {source} by {method} (slot {slot}{created})").format(
                site=d["site"],
                source=d["source"],
                method=d["method"],
                slot=d["slot"],
                created=_(", created") if d["slot_created"] else "",
            )
        )
        if d["rewind_skipped"]:
            console.print(
                "  "
                + _("pg_basebackup, not pg_rewind: {rewind_skipped}").format(rewind_skipped=shown(d["rewind_skipped"]))
            )
        if d["kept_aside"]:
            console.print(
                "  " + _("the previous data directory is kept as {kept_aside}").format(kept_aside=d["kept_aside"])
            )
        state = _("[green]streaming[/green]") if d["streaming"] else _("[red]NOT streaming[/red]")
        console.print("  " + _("{state}, replayed up to {position}").format(state=state, position=d["position"] or "—"))
        for problem in d["problems"]:
            console.print(f"  [red]{shown(problem)}[/red]")

    output.current().result(report, render)
    if not report.ok:
        raise ProblemFound(
            N_("{report}: {problems}"),
            report=report.summary(),
            problems="; ".join(report.problems) or Message(N_("see its server log")),
        )


COMMANDS = [control]
