"""``failover plan|execute`` and ``failback``: the recovery plan, and moving production between sites."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.runs import finish, operator_options, parse_time, read_operator_secret, run_context
from bcpctl.i18n import _, error_message
from bcpctl.options import F, common_options, config_option, escrow_option
from bcpctl.params import Checked
from bcpctl.tables import Table
from dc.errors import N_, Message, UsageError


@click.group()
def failover() -> None:
    """The recovery plan, and failing production over to the offsite site."""


def _age(seconds: float | None) -> str:
    from dc.duration import format_duration

    return "—" if seconds is None else format_duration(seconds)


@failover.command("plan")
@config_option()
@click.option("--site", default=None, help="Site whose repository is read (default: the first offsite site).")
@click.option("--tenant", default=None, help="Only this tenant's systems (and what they depend on).")
@click.option("--system", "systems", multiple=True, help="Only this system (repeatable).")
@escrow_option
@common_options
def failover_plan(
    config_path: str, site: str | None, tenant: str | None, systems: tuple[str, ...], escrow: tuple[str, ...]
) -> None:
    """Print the ordered recovery plan with targets and the newest offsite snapshot's age.

    That age is the RPO a disaster would cost right now.
    """
    from failover.overview import plan_overview

    data = plan_overview(run_context(config_path), site=site, tenant=tenant, systems=systems, escrow=escrow)

    def render(console: Console, d: dict[str, Any]) -> None:
        for group in d["groups"]:
            table = Table(
                _("system"),
                _("tenant"),
                "業務",
                _("after"),
                "RPO",
                "RTO",
                _("newest offsite"),
                _("age"),
                title=_("group {group} (tier {tier})").format(group=group["group"], tier=group["tier"]),
            )
            for s in group["systems"]:
                newest = s["newest_offsite"] or {}
                within = newest.get("within_rpo")
                flag = "" if within is None else (" " + _("ok") if within else " " + _("OVER RPO"))
                table.add_row(
                    s["system"] + (" " + _("(dependency)") if s["as_dependency"] else ""),
                    s["tenant"],
                    s["business"],
                    ", ".join(s["depends_on"]),
                    _age(s["rpo_target"]),
                    _age(s["rto_target"]),
                    (newest.get("snapshot") or _("none"))[:8],
                    _age(newest.get("age_seconds")) + flag,
                )
            console.print(table)
        if d["targets_missing"]:
            console.print(
                _("no RTO/RPO target (cannot be drilled): {targets_missing}").format(
                    targets_missing=", ".join(d["targets_missing"])
                )
            )
        if d["error"]:
            console.print(_("offsite repository not read: {error}").format(error=d["error"]))

    output.current().result(data, render)


def _site_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--site",
        "at_site",
        envvar="BCPCTL_SITE",
        default=None,
        metavar="SITE",
        help=f"The site this bcpctl runs at (else $BCPCTL_SITE); required: {what}.",
    )


def _where(at_site: str | None, command: str, example: str) -> str:
    """The site named by ``--site``/``$BCPCTL_SITE``: a command that moves the control state must know it."""
    if not at_site:
        raise UsageError(
            N_(
                "{command} moves the control state, so it must know where it runs: pass --site {example} "
                "or set BCPCTL_SITE"
            ),
            command=command,
            example=example,
        )
    return at_site


def _confirmation_options(fn: F) -> F:
    fn = click.option(
        "--approver-secret-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="The approver's own secret (else $BCPCTL_APPROVER_SECRET); see 'bcpctl approver enroll'.",
    )(fn)
    fn = click.option("--approver", default=None, help="The second person's name (drills.failover.approvers).")(fn)
    fn = operator_options(fn)
    fn = click.option("--yes", is_flag=True, help="Confirm: this changes production at both sites.")(fn)
    return fn


@failover.command("execute")
@config_option()
@click.option("--to", "to_site", required=True, help="The site that serves from now on.")
@_site_option("the failover runs at --to, where the control state is promoted")
@escrow_option
@click.option("--workers", type=click.IntRange(1, 32), default=None)
@click.option(
    "--declared-at",
    default=None,
    type=Checked("time", parse_time),
    metavar="TIME",
    help="When the disaster struck (ISO 8601; JST if no zone); RTO and RPO are measured from it. Default: now.",
)
@click.option(
    "--lost-work",
    type=click.Choice(["now", "later"]),
    default="now",
    show_default=True,
    help="List the lost transactions of systems with source.surviving_wal after the promotion (two more base"
    " restores per system), or 'later': the report names the 'bcpctl failover lost' command that lists them.",
)
@_confirmation_options
@common_options
def failover_execute(
    config_path: str,
    to_site: str,
    at_site: str | None,
    escrow: tuple[str, ...],
    workers: int | None,
    declared_at: str | None,
    lost_work: str,
    yes: bool,
    approver: str | None,
    approver_secret_file: str | None,
    operator: str | None,
    operator_secret_file: str | None,
) -> None:
    """Fence the primary, promote the control state at --to, restore every system there in plan
    order, verify, promote the site.

    Runs at --to (--site or $BCPCTL_SITE). Refuses without --yes, and where
    drills.failover.two_person is set without a second approver (name and own secret) and the
    operator's own proof (--operator and their secret); the approval is signed into the audit log.
    """
    from dc.approvers import read_secret
    from failover.failover import FailoverRequest, execute_failover
    from failover.results import to_document

    at_site = _where(at_site, "failover execute", to_site)
    ctx = run_context(config_path, site=at_site)
    request = FailoverRequest(
        to_site,
        yes,
        approver,
        read_secret(approver_secret_file),
        escrow,
        workers,
        declared_at=parse_time(declared_at) if declared_at else None,
        operator=operator,
        operator_secret=read_operator_secret(operator_secret_file),
        at_site=at_site,
        lost_work="later" if lost_work == "later" else "now",
    )
    with output.current().progress(_("failover to {to_site}").format(to_site=to_site)) as bar:
        result = execute_failover(ctx, request, on_bytes=bar.advance)
    finish(to_document(result))


@failover.command("lost")
@config_option()
@click.argument("system")
@click.option(
    "--surviving-wal",
    "surviving",
    multiple=True,
    metavar="DIR|URL",
    help="Where the primary's WAL survived: a directory or an sftp:// or s3:// URL (repeatable; default: the"
    " system's source.surviving_wal).",
)
@click.option(
    "--site", default=None, help="Site whose base backups and WAL the failover recovered (default: this one)."
)
@click.option(
    "--declared-at",
    default=None,
    type=Checked("time", parse_time),
    metavar="TIME",
    help="When the disaster struck (ISO 8601; JST if no zone): the end of the lost interval. Default: now.",
)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write the worklist here (CSV and xlsx).")
@common_options
def failover_lost(
    config_path: str,
    system: str,
    surviving: tuple[str, ...],
    site: str | None,
    declared_at: str | None,
    out: str | None,
) -> None:
    """What a failover lost of a postgres-wal system: the transactions after the offsite's last WAL.

    Where the primary's WAL survived, lists every row to type in again (再入力作業一覧) per town
    and 業務, never 個人番号 or 住民票コード; otherwise says exactly which interval is lost. Surviving
    segments of another system, timeline, size or after a hole are named and skipped.
    """
    from pathlib import Path

    from failover.worklist import head_lines, lost_worklist, tail_lines, worklist_lines

    ctx = run_context(config_path)
    if ctx.config_file is None:
        raise UsageError("failover lost needs a configuration file (--config or $BCPCTL_CONFIG)")
    data = lost_worklist(
        ctx.config,
        ctx.config_file,
        system,
        ctx.state,
        surviving=list(surviving) or None,
        site=site,
        declared_at=parse_time(declared_at) if declared_at else None,
        out=Path(out) if out else None,
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        for line in head_lines(japanese_reasons(d)):
            console.print(line, markup=False)
        if d["rows"]:
            table = Table(
                "町", "業務", _("time (JST)"), "操作", _("xid"), _("table"), _("fields"), title="再入力作業一覧"
            )
            for row in worklist_lines(d):
                table.add_row(*row)
            console.print(table)
        for line in tail_lines(d):
            console.print(line, markup=False)
        for path in d["files"]:
            console.print(_("written: {path}").format(path=path), markup=False)

    output.current().result(data, render)


def japanese_reasons(doc: dict[str, Any]) -> dict[str, Any]:
    """The lost-work list is written in Japanese: why each surviving WAL file was not used, in
    Japanese too (``--json`` keeps the English). Recycled files keep their words: they are counted, not named."""
    from backup.walsurvivors import RECYCLED

    def shown(reason: str) -> str:
        if isinstance(reason, Message) and not reason.startswith(RECYCLED):
            return error_message(reason, "ja")
        return reason

    return {
        **doc,
        "skipped": [{**s, "reason": shown(s["reason"])} for s in doc.get("skipped", [])],
        "warnings": [error_message(w, "ja") if isinstance(w, Message) else w for w in doc.get("warnings", [])],
    }


@click.command("failback")
@config_option()
@click.option("--workers", type=click.IntRange(1, 32), default=None)
@_site_option("failback runs at the active site, where the live control state is")
@_confirmation_options
@common_options
def failback(
    config_path: str,
    workers: int | None,
    at_site: str | None,
    yes: bool,
    approver: str | None,
    approver_secret_file: str | None,
    operator: str | None,
    operator_secret_file: str | None,
) -> None:
    """Bring the writes made during a failover and the control state back to the primary, verify,
    and switch back.

    Runs at the active site (--site or $BCPCTL_SITE). The offsite site is fenced first, so no
    write is lost; the primary's previous data is kept.
    """
    from dc.approvers import read_secret
    from failover.failback import FailbackRequest, execute_failback
    from failover.results import to_document

    at_site = _where(at_site, "failback", "<the active site>")
    ctx = run_context(config_path, site=at_site)
    request = FailbackRequest(
        yes,
        approver,
        read_secret(approver_secret_file),
        workers,
        operator=operator,
        operator_secret=read_operator_secret(operator_secret_file),
        at_site=at_site,
    )
    result = execute_failback(ctx, request)
    finish(to_document(result))


COMMANDS = [failover, failback]
