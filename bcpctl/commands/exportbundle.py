"""``export build|open|deliveries|confirm-deletion``: an approved request's bundle, from its build to its deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.export import _context, _now, _operator, export
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table


@export.command("build")
@click.argument("request_id", metavar="REQ")
@config_option()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory for the bundle.")
@click.option("--site", default=None, help="Site whose newest snapshot to read (default: the offsite replica).")
@common_options
def export_build(config_path: str, request_id: str, out_dir: str, site: str | None) -> None:
    """Build the signed, encrypted bundle of an approved request from the replica."""
    from victim_support.build import build_export

    config, settings, state, config_dir = _context(config_path)
    result = build_export(
        state,
        config,
        settings,
        request_id,
        Path(out_dir),
        now=_now(),
        site=site,
        config_dir=config_dir,
        actor=_operator(),
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(_("bundle {bundle}").format(bundle=d["bundle"]))
        console.print(
            "  "
            + _(
                "{rows} rows, {excluded_protected} protected rows excluded; as of {as_of} (site {site}, replication "
                "lag {replication_lag})"
            ).format(
                rows=d["rows"],
                excluded_protected=d["excluded_protected"],
                as_of=output.jst(d["as_of"]),
                site=d["site"],
                replication_lag=d["replication_lag"],
            )
        )
        if d["cp932_lossy_rows"] is not None:
            console.print(
                "  "
                + _("CP932 copy: {cp932_lossy_rows} rows could not be held exactly (listed in manifest)").format(
                    cp932_lossy_rows=d["cp932_lossy_rows"]
                )
            )
        console.print(
            "  "
            + _("expires {expires_at}; audit entry {audit_seq}").format(
                expires_at=output.jst(d["expires_at"]), audit_seq=d["audit_seq"]
            )
        )

    output.current().result(result, render)


@export.command("open")
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--identity", required=True, type=click.Path(dir_okay=False, exists=True), help="age identity file.")
@click.option("--verify-key", required=True, help="Sender's 'ssh-ed25519 AAAA…' key, or a file holding it.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Empty directory for files.")
@click.option("--config", "config_path", envvar="BCPCTL_CONFIG", default=None, help="For the control database.")
@common_options
def export_open(bundle: str, identity: str, verify_key: str, out_dir: str, config_path: str | None) -> None:
    """Verify a bundle's signature, expiry and recipient, then decrypt it (the partner's side)."""
    from dc.config import load_config
    from dc.state import open_state
    from victim_support.receipt import open_and_record

    control_db = load_config(config_path)[0].control_db if config_path else None
    opened = open_and_record(
        open_state(control_db), Path(bundle), Path(identity), verify_key, Path(out_dir), now=_now(), actor=_operator()
    )
    manifest = opened.manifest
    data = {
        "bundle": opened.path,
        "out": opened.out,
        "request_id": opened.envelope.get("request_id"),
        "from": opened.envelope.get("from"),
        "as_of": manifest.get("as_of"),
        "replication_lag": manifest.get("replication_lag"),
        "expires_at": opened.envelope.get("expires_at"),
        "counts": manifest.get("counts"),
        "files": opened.files,
    }

    def render(console: Console, d: dict[str, Any]) -> None:
        sender = d["from"] or {}
        console.print(
            _("verified bundle from {name} ({lg_code}), request {request_id}").format(
                name=sender.get("name"), lg_code=sender.get("lg_code"), request_id=d["request_id"]
            )
        )
        console.print(
            "  "
            + _("as of {as_of} (replication lag {replication_lag}); delete by {expires_at}").format(
                as_of=output.jst(d["as_of"]),
                replication_lag=d["replication_lag"],
                expires_at=output.jst(d["expires_at"]),
            )
        )
        for name, size in d["files"].items():
            console.print("  " + _("{out}/{name} ({size} bytes)").format(out=d["out"], name=name, size=size))

    output.current().result(data, render)


@export.command("deliveries")
@config_option()
@click.option("--request", "request_id", default=None, metavar="REQ", help="Only this request's delivery.")
@common_options
def export_deliveries(config_path: str, request_id: str | None) -> None:
    """Bundles handed to partners (built on their first download): status, downloads, deletion confirmation.

    Status: ready (built, not downloaded yet), downloaded, expired (the retention period is
    over and the partner's deletion confirmation is due) or deleted (confirmed).
    """
    from victim_support.delivery import list_deliveries

    _config, _settings, state, _config_path = _context(config_path)
    now = _now()
    rows = [{**output.to_jsonable(d), "status": d.status(now)} for d in list_deliveries(state, request_id=request_id)]

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(
            _("request"), _("partner"), _("status"), _("downloads"), _("built"), _("delete by"), _("deletion confirmed")
        )
        for d in data:
            confirmed = f"{output.jst(d['deleted_at'])} ({d['deleted_by']})" if d["deleted_at"] else "—"
            table.add_row(
                d["request_id"],
                d["partner"],
                status_text(d["status"]),
                str(d["downloads"]),
                output.jst(d["built_at"]),
                output.jst(d["expires_at"]),
                confirmed,
            )
        console.print(table)

    output.current().result(rows, render)


@export.command("confirm-deletion")
@click.argument("request_id", metavar="DELIVERY")
@config_option()
@click.option("--partner", required=True, help="The partner whose registered verify_key signed the statement.")
@click.option(
    "--statement",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The partner's deletion statement (bcpctl-bundle-deletion/1 text).",
)
@click.option(
    "--signature",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Its SSH signature (ssh-keygen -Y sign -n bcpctl-bundle-deletion); default STATEMENT.sig.",
)
@common_options
def export_confirm_deletion(
    config_path: str, request_id: str, partner: str, statement: Path, signature: Path | None
) -> None:
    """Record the partner's legal confirmation that every copy of a delivered bundle was deleted.

    DELIVERY is the request id. The statement must be signed with the partner's registered
    key (the one its signed web requests use); the server's copy of the bundle is removed and
    the confirmation audited as the web records it. The statement's format is in
    victim_support/deletion.py.
    """
    from victim_support.deletion import confirm_signed_deletion

    config, settings, state, _config_path = _context(config_path)
    confirmed = confirm_signed_deletion(
        state,
        config,
        settings,
        request_id,
        partner=partner,
        statement=statement,
        signature=signature or statement.with_name(statement.name + ".sig"),
        now=_now(),
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        when = output.jst(d["deleted_at"])
        console.print(
            _("deletion of {request_id} confirmed by {deleted_by} ({partner}) at {when}").format(
                request_id=d["request_id"], deleted_by=d["deleted_by"], partner=d["partner"], when=when
            )
        )

    output.current().result(confirmed, render)


COMMANDS = [export]
