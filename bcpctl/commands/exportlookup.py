"""``export lookup|notices``: finding one evacuee, and the home town's queue of protected residents asked for."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.export import _context, _now, _operator, export
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.tables import Table


@export.command("lookup")
@config_option()
@click.option("--partner", required=True, help="The sheltering municipality asking (a key of partners:).")
@click.option("--tenant", required=True, help="The person's home municipality (a tenant).")
@click.option("--disaster-id", required=True, help="A declared disaster (exports.lookups.disasters).")
@click.option("--family", required=True, help="Family name, kanji or kana (full or half width).")
@click.option("--given", required=True, help="Given name, kanji or kana.")
@click.option("--birth-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Date of birth.")
@click.option("--area", default=None, help="The former address's 町字 (name or 7-digit id), if known.")
@click.option("--official", required=True, help="The official asking (the per-hour limit counts per official).")
@click.option("--site", default=None, help="Site whose newest snapshot to read (default: the export site).")
@click.option(
    "--approval",
    default=None,
    help="The code a lookup needing approval was answered with, once the home town approved it.",
)
@common_options
def export_lookup(
    config_path: str,
    partner: str,
    tenant: str,
    disaster_id: str,
    family: str,
    given: str,
    birth_date: Any,
    area: str | None,
    official: str,
    site: str | None,
    approval: str | None,
) -> None:
    """Find one evacuee by full name and date of birth: at most a few candidates, only the lawful fields.

    Names compare after NFKC, with katakana and hiragana equal and old forms (髙/高, 﨑/崎)
    equal to the common ones; no wildcard, no name part alone. Pre-authorised by
    exports.lookups for its partners and declared disasters, limited per official and per
    partner per hour, audited once per lookup, and every answer takes the same time. A
    protected resident answers as not found (their town is told). Refusals exit 2.
    """
    from victim_support.lookup import lookup_evacuee
    from victim_support.lookuprules import LookupQuery

    config, settings, state, config_dir = _context(config_path)
    query = LookupQuery(
        partner=partner,
        tenant=tenant,
        disaster_id=disaster_id,
        family=family,
        given=given,
        birth_date=birth_date.date(),
        machiaza=area,
        official=official,
        filed_by=f"os:{_operator()}",
    )
    answer = lookup_evacuee(
        state, config, settings, query, now=_now(), config_dir=config_dir, site=site, approval=approval
    )
    data = {**output.to_jsonable(answer), "found": answer.found}

    def render(console: Console, d: dict[str, Any]) -> None:
        if d["waiting"]:
            console.print(
                _("lookup {id} ({tenant} → {partner}) waits for an approver of {tenant}:").format(
                    id=d["id"], tenant=d["tenant"], partner=d["partner"]
                )
            )
            console.print(f"  bcpctl export lookup-approve {d['id']} --approver NAME", highlight=False)
            console.print(
                "  " + _("then ask again with --approval {approval_code}").format(approval_code=d["approval_code"]),
                highlight=False,
            )
            return
        console.print(
            _("lookup {id} ({tenant} → {partner}), as of {as_of}").format(
                id=d["id"], tenant=d["tenant"], partner=d["partner"], as_of=output.jst(d["as_of"])
            )
        )
        if d["ambiguous"]:
            console.print("  " + _("more people match than may be shown: ask for the former address's 町字 (--area)"))
        elif not d["found"]:
            console.print("  " + _("not found"))
        else:
            table = Table(*d["columns"])
            for row in d["candidates"]:
                table.add_row(*(row[c] for c in d["columns"]))
            console.print(table)

    output.current().result(data, render)


@export.command("notices")
@config_option()
@click.option("--tenant", default=None, help="Only this home town's notices.")
@common_options
def export_notices(config_path: str, tenant: str | None) -> None:
    """The home town's queue: lookups that named a protected (支援措置/抑止) resident, answered as not found."""
    from victim_support.lookup import read_notices

    _config, _settings, state, _dir = _context(config_path)
    rows = read_notices(state, tenant)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(_("at"), _("tenant"), _("partner"), _("official"), _("lookup"), _("resident (town's pseudonym)"))
        for d in data:
            table.add_row(
                output.jst(d["at"]), d["tenant"], d["partner"], d["official"], d["lookup_id"], d["resident_ref"]
            )
        console.print(table)

    output.current().result(rows, render)


COMMANDS = [export]


@export.command("lookup-approve")
@click.argument("lookup_id", metavar="LOOKUP")
@config_option()
@click.option("--approver", required=True, help="An approver of the person's home town (as configured).")
@click.option(
    "--approver-secret-file",
    "secret_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="The approver's own secret (else $BCPCTL_APPROVER_SECRET); see 'bcpctl approver enroll'.",
)
@common_options
def export_lookup_approve(config_path: str, lookup_id: str, approver: str, secret_file: str | None) -> None:
    """Approve one waiting lookup of a partner whose lookups need approval (exports.lookups.approval).

    Signed with your own secret into the audit chain like an export approval; the partner then
    asks the same question again with its code, and is answered once.
    """
    from dc.approvers import read_secret
    from victim_support.lookupapproval import approve_lookup

    config, settings, state, _dir = _context(config_path)
    done = approve_lookup(
        state, config, settings, lookup_id, approver=approver, secret=read_secret(secret_file), now=_now()
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("lookup {lookup} ({tenant} → {partner}) approved by {approver}").format(
                lookup=d["lookup"], tenant=d["tenant"], partner=d["partner"], approver=d["approver"]
            )
        )

    output.current().result(done, render)
