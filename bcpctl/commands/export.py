"""``export request|list|approve|deny``: filing and deciding victim-support exports; the ``export`` group.

The other export commands (:mod:`bcpctl.commands.exportbundle`, :mod:`~bcpctl.commands.exportlookup`,
:mod:`~bcpctl.commands.exportreturn`) join the group defined here and share its helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import F, common_options, config_option
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table


@click.group()
def export() -> None:
    """Lawful, minimal, encrypted resident lists for municipalities sheltering evacuees."""


def _context(config_path: str) -> tuple[Any, Any, Any, Path]:
    """Configuration, validated ``exports:`` settings, control database and config directory."""
    from dc.config import load_config
    from dc.state import open_state
    from victim_support.enrolment import with_enrolled
    from victim_support.settings import load_export_settings

    config, resolved = load_config(config_path)
    settings = load_export_settings(config, str(resolved))
    state = open_state(config.control_db)
    return with_enrolled(config, state), settings, state, resolved.parent


def _now() -> Any:
    from dc.clock import utcnow

    return utcnow()


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _render_request(console: Console, d: dict[str, Any]) -> None:
    console.print(
        _("request {id}: {status} ({approvals}/{required_approvals} approvals)").format(
            id=d["id"],
            status=status_text(d["status"]),
            approvals=len(d["approvals"]),
            required_approvals=d["required_approvals"],
        )
    )
    console.print(
        "  "
        + _("{tenant} → {partner}, {basis}, purposes {purposes}").format(
            tenant=d["tenant"], partner=d["partner"], basis=d["basis"], purposes=", ".join(d["purposes"])
        )
    )
    console.print("  " + _("fields: {fields}").format(fields=", ".join(d["fields"])))
    estimate = d.get("estimate")
    if estimate:
        ledger = _("; 被災者台帳 entries of {disaster_id}: {ledger_entries}").format(
            disaster_id=d["disaster_id"], ledger_entries=estimate["ledger_entries"]
        )
        console.print(
            "  "
            + _(
                "estimate: {rows} rows in {areas} 町字, {excluded_protected} protected rows excluded (snapshot "
                "{snapshot} at {site}, as of {as_of})"
            ).format(
                rows=estimate["rows"],
                areas=estimate["areas"],
                excluded_protected=estimate["excluded_protected"],
                snapshot=estimate["snapshot"][:8],
                site=estimate["site"],
                as_of=output.jst(estimate["as_of"]),
            )
            + (ledger if estimate["ledger_required"] else "")
        )
    else:
        console.print("  " + _("estimate: none — filed without the check against the replica; cannot be approved"))
    if d.get("ledger_waiver"):
        console.print(
            "  " + _("no 台帳 entry needed because: {ledger_waiver}").format(ledger_waiver=d["ledger_waiver"])
        )
    if d.get("denial"):
        console.print("  " + _("denied by {denial}").format(denial=d["denial"]))


@export.command("request")
@config_option()
@click.option("--partner", required=True, help="Requesting municipality (a key of partners:).")
@click.option("--tenant", required=True, help="Municipality whose residents are requested.")
@click.option("--disaster-id", required=True, help="Disaster identifier (e.g. 災害名 or GLIDE number).")
@click.option("--disaster-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Date of the disaster.")
@click.option("--basis", required=True, help="Legal basis: DMA-90-4-1-3, DMA-49-11-3 or APPI-69-2-3.")
@click.option("--purpose", "purposes", multiple=True, required=True, help="Purpose code (repeatable or comma list).")
@click.option("--field", "fields", multiple=True, required=True, help="Field or group (address, damage); repeatable.")
@click.option("--area", "areas", multiple=True, help="町字 name or 7-digit 町字ID (repeatable or comma list).")
@click.option("--all-areas", is_flag=True, help="Every 町字 of the municipality.")
@click.option("--support-only", is_flag=True, help="Only 避難行動要支援者 (DMA-49-11-3).")
@click.option(
    "--retention-days", type=click.IntRange(1, 3650), default=None, help="Days the partner may keep the list."
)
@click.option("--format", "formats", multiple=True, type=click.Choice(["cp932", "pfif"]), help="Optional extra file.")
@click.option("--requested-by", required=True, help="Name of the requesting officer.")
@click.option(
    "--no-ledger-reason",
    "ledger_waiver",
    default="",
    help="Why the request needs no 被災者台帳 entry of its disaster although its purpose would use one.",
)
@click.option("--site", default=None, help="Site whose newest snapshot to check against (default: the export site).")
@common_options
def export_request(
    config_path: str,
    partner: str,
    tenant: str,
    disaster_id: str,
    disaster_date: Any,
    basis: str,
    purposes: tuple[str, ...],
    fields: tuple[str, ...],
    areas: tuple[str, ...],
    all_areas: bool,
    support_only: bool,
    retention_days: int | None,
    formats: tuple[str, ...],
    requested_by: str,
    ledger_waiver: str,
    site: str | None,
) -> None:
    """File a request, checked completely before anyone approves it.

    The law tables reject any field, purpose or row class the basis does not allow; the
    newest snapshot at the export site must hold every 町字 named and, when the purpose needs
    the 被災者台帳, an entry of the disaster (or --no-ledger-reason says why not). Exit 2 on
    any refusal. The rows a build would carry are estimated and shown to the approvers.
    """
    from victim_support.policy import Scope
    from victim_support.prefiling import file_request
    from victim_support.store import NewRequest

    config, settings, state, config_dir = _context(config_path)
    new = NewRequest(
        partner=partner,
        tenant=tenant,
        disaster_id=disaster_id,
        disaster_date=disaster_date.date(),
        basis=basis,
        purposes=_split(purposes),
        fields=_split(fields),
        scope=Scope(_split(areas), all_areas, support_only),
        requested_by=requested_by,
        retention_days=retention_days,
        formats=formats,
        ledger_waiver=ledger_waiver,
    )
    request = file_request(state, config, settings, new, _now(), config_dir=config_dir, site=site)
    output.current().result(request, _render_request)


@export.command("list")
@config_option()
@click.option("--tenant", default=None, help="Only this tenant's requests.")
@click.option(
    "--status", default=None, type=click.Choice(["pending", "approved", "denied", "expired"]), help="Only this status."
)
@common_options
def export_list(config_path: str, tenant: str | None, status: str | None) -> None:
    """List export requests with their effective status."""
    from victim_support.store import list_requests

    _config, settings, state, _config_path = _context(config_path)
    rows = list_requests(state, settings, _now(), tenant=tenant, status=status)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(
            _("id"), _("status"), _("tenant → partner"), _("basis"), _("approvals"), _("builds"), _("valid until")
        )
        for d in data:
            table.add_row(
                d["id"],
                status_text(d["status"]),
                f"{d['tenant']} → {d['partner']}",
                d["basis"],
                f"{len(d['approvals'])}/{d['required_approvals']}",
                str(d["builds"]),
                output.jst(d["valid_until"]),
            )
        console.print(table)

    output.current().result(rows, render)


def _decide(
    config_path: str, request_id: str, approver: str, secret_file: str | None, reason: str, approve: bool
) -> None:
    from dc.approvers import read_secret
    from victim_support.decisions import decide

    config, settings, state, _config_path = _context(config_path)
    request = decide(
        state,
        config,
        settings,
        request_id,
        approver=approver,
        secret=read_secret(secret_file),
        approve=approve,
        reason=reason,
        now=_now(),
    )
    output.current().result(request, _render_request)


def _secret_option(fn: F) -> F:
    return click.option(
        "--approver-secret-file",
        "secret_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="The approver's own secret (else $BCPCTL_APPROVER_SECRET); see 'bcpctl approver enroll'.",
    )(fn)


@export.command("approve")
@click.argument("request_id", metavar="REQ")
@config_option()
@click.option("--approver", required=True, help="Name of the approving official (as configured).")
@_secret_option
@click.option("--reason", default="", help="Required for an alternate approver: why the municipality cannot act.")
@common_options
def export_approve(config_path: str, request_id: str, approver: str, secret_file: str | None, reason: str) -> None:
    """Approve a request with your own secret; it becomes buildable at the basis's number of distinct approvers.

    The approval signs the request's full specification into the audit chain: a wrong or
    missing secret exits 3 and records nothing.
    """
    _decide(config_path, request_id, approver, secret_file, reason, True)


@export.command("deny")
@click.argument("request_id", metavar="REQ")
@config_option()
@click.option("--approver", required=True, help="Name of the deciding official (as configured).")
@_secret_option
@click.option("--reason", required=True, help="Why the request is denied.")
@common_options
def export_deny(config_path: str, request_id: str, approver: str, secret_file: str | None, reason: str) -> None:
    """Deny a request (final), with your own secret as for an approval."""
    _decide(config_path, request_id, approver, secret_file, reason, False)


def _operator() -> str:
    from dc.osuser import os_user

    return os_user()


COMMANDS = [export]
