"""``drill run|list|report|cleanup|due``: prove recovery at the offsite site and keep the record."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bcpctl import output, session
from bcpctl.commands.runs import (
    VERDICTS,
    finish,
    japanese,
    operator_options,
    parse_time,
    read_operator_secret,
    run_context,
)
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, config_option, escrow_option
from bcpctl.params import DAY, Checked, Duration
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table
from dc.errors import N_, ProblemFound, UsageError
from failover.checknames import step_name

if TYPE_CHECKING:
    from failover.lifecycle import RunContext


@click.group()
def drill() -> None:
    """Drills: restore at the offsite site, verify, measure RTO/RPO, clean up, report."""


@drill.command("run")
@config_option()
@click.option(
    "--mode",
    default="isolated",
    show_default=True,
    help="readiness, isolated, point-in-time, staff-loss, switchover, or export (訓練 on synthetic residents).",
)
@click.option("--tenant", default=None, help="Only this tenant's systems (and what they depend on).")
@click.option("--system", "systems", multiple=True, help="Only this system (repeatable; dependencies come too).")
@click.option(
    "--before",
    default=None,
    type=Checked("time", "bcpctl.commands.runs:parse_time"),
    metavar="TIME",
    help="point-in-time: newest snapshot before TIME (ISO 8601; JST if no zone).",
)
@click.option(
    "--last-known-good",
    is_flag=True,
    help="point-in-time: the last known good snapshot the ransomware signals recorded (instead of --before).",
)
@click.option("--site", default=None, help="Site to drill at (default: the first offsite site).")
@escrow_option
@click.option(
    "--timeout",
    default=None,
    type=Duration(1, 7 * DAY, as_text=True),
    metavar="DURATION",
    help="Abort after this long (default: drills.timeout or the largest RTO).",
)
@click.option(
    "--workers", type=click.IntRange(1, 32), default=None, help="Systems restored in parallel within a group."
)
@click.option("--yes", is_flag=True, help="switchover: confirm that production moves to the offsite site and back.")
@click.option("--approver", default=None, help="switchover: the second person's name (drills.failover.approvers).")
@click.option(
    "--approver-secret-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="switchover: the approver's own secret (else $BCPCTL_APPROVER_SECRET).",
)
@click.option("--partner", default=None, help="export: the partner the rehearsal bundle is encrypted to.")
@click.option(
    "--out", "out_dir", default=None, type=click.Path(file_okay=False), help="export: directory for the 訓練 bundle."
)
@click.option(
    "--partner-identity",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="export: the partner's age identity, to open the bundle as the partner would.",
)
@click.option(
    "--partner-signing-key",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="export: the partner's registered signing key for its note and deletion statement (else a key for the run).",
)
@operator_options
@common_options
def drill_run(
    config_path: str,
    mode: str,
    tenant: str | None,
    systems: tuple[str, ...],
    before: str | None,
    last_known_good: bool,
    site: str | None,
    escrow: tuple[str, ...],
    timeout: str | None,
    workers: int | None,
    yes: bool,
    approver: str | None,
    approver_secret_file: str | None,
    operator: str | None,
    operator_secret_file: str | None,
    partner: str | None,
    out_dir: str | None,
    partner_identity: str | None,
    partner_signing_key: str | None,
) -> None:
    """Run a drill and write its reports; exits 1 unless every system, check and the cleanup passed.

    Ctrl-C or SIGTERM aborts the drill; cleanup still runs and is verified.
    """
    from dc.approvers import read_secret
    from dc.duration import parse_duration
    from failover.drill import run_drill
    from failover.drillrequest import DrillRequest
    from failover.results import to_document

    if mode == "export":
        _export_drill(config_path, tenant, partner, out_dir, site, partner_identity, partner_signing_key)
        return
    try:
        limit = parse_duration(timeout) if timeout else None
    except ValueError as exc:
        raise UsageError(N_("--timeout: {exc}"), exc=exc) from None
    ctx = run_context(config_path)
    moment = parse_time(before) if before else None
    if mode == "point-in-time":
        moment = _known_good_moment(ctx, tenant, systems, moment, last_known_good)
    elif last_known_good:
        raise UsageError(N_("--last-known-good only applies to --mode point-in-time"))
    request = DrillRequest(
        mode=mode,
        tenant=tenant,
        systems=systems,
        before=moment,
        site=site,
        escrow=escrow,
        timeout=limit,
        workers=workers,
        confirmed=yes,
        approver=approver,
        approver_secret=read_secret(approver_secret_file) if mode == "switchover" else None,
        operator=operator,
        operator_secret=read_operator_secret(operator_secret_file) if mode == "switchover" else None,
    )
    out = output.current()
    with out.progress(_("drill {mode}").format(mode=mode)) as bar:
        result = run_drill(ctx, request, on_bytes=bar.advance)
    finish(to_document(result))


def _known_good_moment(
    ctx: RunContext, tenant: str | None, systems: tuple[str, ...], before: datetime | None, use: bool
) -> datetime | None:
    """``--before``, or with ``--last-known-good`` the moment that restores the recorded last known
    good snapshot; a recorded anomaly is offered as a hint either way."""
    from failover.knowngood import known_good, restore_point
    from failover.plan import select_systems

    chosen = select_systems(ctx.config, tenant=tenant, systems=systems)
    goods = known_good(ctx.state, chosen)
    if use:
        if before is not None:
            raise UsageError(N_("give --before TIME or --last-known-good, not both"))
        return restore_point(goods, chosen)
    hint = "; ".join(g.describe() for g in goods)
    if before is None and hint:
        raise UsageError(N_("point-in-time needs --before TIME or --last-known-good ({hint})"), hint=hint)
    if hint:
        output.current().notice(_("hint: {hint}: --last-known-good restores it").format(hint=hint))
    return before


def _export_drill(
    config_path: str,
    tenant: str | None,
    partner: str | None,
    out_dir: str | None,
    site: str | None,
    identity: str | None,
    signing_key: str | None,
) -> None:
    from pathlib import Path

    from bcpctl.commands.export import _context, _now, _operator
    from victim_support.exportdrill import run_export_drill

    if not tenant or not partner or not out_dir:
        raise UsageError(N_("--mode export needs --tenant, --partner and --out"))
    config, settings, state, config_dir = _context(config_path)
    result = run_export_drill(
        state,
        config,
        settings,
        tenant_id=tenant,
        partner_id=partner,
        out=Path(out_dir),
        now=_now(),
        actor=f"os:{_operator()}",
        config_dir=config_dir,
        site=site,
        partner_identity=Path(identity) if identity else None,
        partner_signing_key=Path(signing_key) if signing_key else None,
    )

    def render(console: Any, d: dict[str, Any]) -> None:
        console.print(
            _("訓練 export {tenant} → {partner}: {rows} synthetic rows in {areas} 町字").format(
                tenant=d["tenant"], partner=d["partner"], rows=d["rows"], areas=d["areas"]
            )
        )
        console.print(
            "  "
            + _("bundle {bundle}; time to deliver (RTO) {time_to_deliver} s; opened {opened}").format(
                bundle=d["bundle"], time_to_deliver=d["time_to_deliver"], opened=d["opened"]
            )
        )
        console.print("  " + ", ".join(f"{shown(step_name(step))} {seconds}s" for step, seconds in d["steps"].items()))
        console.print(
            "  "
            + _("returned note {note}; deletion confirmed by {deleted_by}").format(
                note=d["note"], deleted_by=d["deleted_by"]
            )
        )
        console.print(
            _("drill export {run_id}: {status}").format(
                run_id=d["run_id"], status=_(VERDICTS.get(d["status"], d["status"].upper()))
            )
        )

    output.current().result(result, render)


@drill.command("list")
@config_option(required=False)
@click.option("--kind", type=click.Choice(["drill", "failover", "failback"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=30, show_default=True)
@common_options
def drill_list(config_path: str | None, kind: str | None, limit: int) -> None:
    """List drills, failovers and failbacks, newest first."""
    from dc.state import open_state
    from failover.records import list_runs

    state = open_state(session.config(config_path)[0].control_db if config_path else None)
    rows = [vars(r) for r in list_runs(state, kind=kind, limit=limit)]

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(_("id"), _("kind"), _("mode"), _("status"), _("site"), _("declared"), _("error"))
        for r in data:
            table.add_row(
                r["id"],
                status_text(r["kind"]),
                status_text(r["mode"]),
                status_text(r["status"]),
                r["site"] or "",
                output.jst(r["declared_at"]),
                shown(r["error"]) if r["error"] else "",
            )
        console.print(table)

    output.current().result(rows, render)


@drill.command("report")
@click.argument("run_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "html", "ja", "pdf"]),
    default="json",
    show_default=True,
    help="pdf: the HTML report printed by headless Chromium (needs --out).",
)
@click.option("--tenant", default=None, help="ja: only this tenant's 訓練実施報告.")
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout."
)
@config_option(required=False)
@common_options
def drill_report(run_id: str, fmt: str, tenant: str | None, out_file: str | None, config_path: str | None) -> None:
    """Render a stored run (ID or a unique prefix): JSON, HTML, its PDF, or the Japanese summary per tenant."""
    from pathlib import Path

    from dc.state import open_state
    from failover.reports import render_report, site_names, write_pdf

    if fmt == "pdf" and not out_file:
        raise UsageError(N_("--format pdf needs --out FILE"))
    consortium = session.config(config_path)[0] if config_path else None
    names = {k: t.name for k, t in consortium.tenants.items()} if consortium else {}
    state = open_state(consortium.control_db if consortium else None)
    if fmt == "pdf" and out_file:
        written = write_pdf(state, run_id, Path(out_file), japanese)
        output.current().notice(_("wrote {written}").format(written=written))
        return
    sites = site_names(consortium) if consortium else None
    text = render_report(state, run_id, fmt, names, tenant, sites, japanese)
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
        output.current().notice(_("wrote {out_file}").format(out_file=out_file))
    else:
        click.echo(text, nl=False)


@drill.command("cleanup")
@config_option()
@common_options
def drill_cleanup(config_path: str) -> None:
    """Remove sandboxes left by killed drills or cut-off cleanups, and verify they are gone."""
    from dc.clock import utcnow
    from failover.cleanup import sweep
    from failover.results import to_document

    ctx = run_context(config_path)
    swept = to_document(sweep(ctx.state, utcnow()))

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        for s in data:
            console.print(
                _("run {run_id} ({was_status}): removed {removed}").format(
                    run_id=s["run_id"],
                    was_status=status_text(s["was_status"]),
                    removed=", ".join(s["cleanup"]["removed"]) or _("nothing"),
                )
            )
            for left in s["cleanup"]["leftovers"]:
                console.print("  " + _("LEFT: {left}").format(left=left))
        console.print(_("{count} run(s) swept").format(count=len(data)))

    output.current().result(swept, render)
    left = [x for s in swept for x in s["cleanup"]["leftovers"]]
    if left:
        raise ProblemFound(N_("cleanup incomplete: {left}"), left=left[0])


@drill.command("due")
@config_option()
@common_options
def drill_due(config_path: str) -> None:
    """Systems not drilled successfully within drills.max_age, and whether today is a blackout."""
    from failover.schedule import drill_due

    ctx = run_context(config_path)
    data = drill_due(ctx)

    def render(console: Console, d: dict[str, Any]) -> None:
        if d["blackout"]:
            console.print(
                _("today is in blackout '{blackout}'; next window {next_window}").format(
                    blackout=d["blackout"], next_window=output.jst(d["next_window"])
                )
            )
        for o in d["overdue"]:
            last = output.jst(o["last_success"]) if o["last_success"] else _("never")
            console.print(_("OVERDUE {system}: last passed drill {last}").format(system=o["system"], last=last))
        console.print(_("{overdue} system(s) overdue").format(overdue=len(d["overdue"])))

    output.current().result(data, render)


COMMANDS = [drill]
