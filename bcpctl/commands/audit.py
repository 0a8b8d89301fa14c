"""``audit verify``: check the hash chain of the audit log, and every export request against it."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _, shown
from bcpctl.options import common_options
from dc.errors import N_


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log of exports."""


@audit.command("verify")
@click.option("--config", "config_path", envvar="BCPCTL_CONFIG", default=None, help="For the control database.")
@click.option("--anchor", default=None, metavar="SEQ:HASH", help="A chain head held elsewhere (bundle envelope).")
@click.option(
    "--recovered",
    "recovered_url",
    default=None,
    metavar="URL",
    help="The old site's control database, recovered after a failover: names the entries it never shipped.",
)
@common_options
def audit_verify(config_path: str | None, anchor: str | None, recovered_url: str | None) -> None:
    """Verify every entry links to the one before, and every export request matches its entries.

    Exit 1 names the first bad entry, or the first request whose row (status, fields, areas, …)
    no longer matches what was requested and approved. With --config, approvals are also
    verified against the approvers' credentials. Across a failover the chain continues at the
    offsite; the entries the primary wrote after its last shipped copy are stated, never
    passed over (with --recovered, named one by one).
    """
    from dc.clock import utcnow
    from dc.config import load_config
    from dc.state import open_state
    from victim_support import audit as log
    from victim_support.errors import AuditChainBroken
    from victim_support.integrity import first_problem, verify_control_state
    from victim_support.settings import load_export_settings

    parsed = log.parse_anchor(anchor) if anchor else None
    config, settings = None, None
    if config_path:
        config, resolved = load_config(config_path)
        settings = load_export_settings(config, str(resolved))
    recovered = open_state(recovered_url) if recovered_url else None
    report = verify_control_state(
        open_state(config.control_db if config else None),
        parsed,
        utcnow(),
        config=config,
        settings=settings,
        recovered=recovered,
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        if d["first_bad_seq"] is not None:
            console.print(
                _("[red]audit log broken[/red] at entry {first_bad_seq}: {problem}").format(
                    first_bad_seq=d["first_bad_seq"], problem=shown(d["problem"])
                )
            )
        else:
            console.print(
                _("audit log intact: {entries} entries, head {head_seq}:{head_hash}").format(
                    entries=d["entries"], head_seq=d["head_seq"], head_hash=d["head_hash"]
                )
            )
        signed = _("approvals verified") if d["signatures_checked"] else _("approvals not verified (no --config)")
        console.print(
            _("export requests checked: {requests_checked} ({signed})").format(
                requests_checked=d["requests_checked"], signed=signed
            )
        )
        for found in d["requests"]:
            console.print(
                _("[red]request {request}[/red]: {problem}").format(
                    request=found["request"], problem=shown(found["problem"])
                )
            )
        for gap in d["failovers"]:
            console.print(_("failover at entry {seq}: {statement}").format(seq=gap["seq"], statement=gap["statement"]))
            if gap["problem"]:
                console.print(
                    _("[red]recovered chain not compared[/red]: {problem}").format(problem=shown(gap["problem"]))
                )

    output.current().result(report, render)
    if report.first_bad_seq is not None:
        raise AuditChainBroken(
            N_("audit log broken at entry {first_bad_seq}: {problem}"),
            first_bad_seq=report.first_bad_seq,
            problem=report.problem,
        )
    if report.requests:
        raise first_problem(report)


COMMANDS = [audit]
