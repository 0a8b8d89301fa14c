"""``partner enrol|invite|invitations|confirm|remove|list``: a sheltering municipality registered on the day."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.export import _context, _now, _operator
from bcpctl.i18n import N_, _
from bcpctl.options import common_options, config_option
from bcpctl.params import DAY, Duration
from bcpctl.tables import Table

STATUS = {
    "waiting": N_("waiting (not used yet)"),
    "pending": N_("pending (submitted, not confirmed)"),
    "expired": N_("expired"),
    "confirmed": N_("confirmed"),
}


@click.group()
def partner() -> None:
    """Partner municipalities that may ask for lists, lookups and send notes back."""


@partner.command("enrol")
@click.argument("partner_id", metavar="ID")
@config_option()
@click.option("--name", required=True, help="The municipality's name (e.g. つくば市).")
@click.option("--lg-code", required=True, help="Its 6-digit 全国地方公共団体コード (check digit validated).")
@click.option("--age-recipient", required=True, help="Its age recipient (age1…): what lists are encrypted to.")
@click.option("--verify-key", required=True, help="Its signing key ('ssh-ed25519 AAAA…' or a file holding it).")
@click.option("--official", "officials", multiple=True, required=True, help="An official of the partner (repeatable).")
@common_options
def partner_enrol(
    config_path: str,
    partner_id: str,
    name: str,
    lg_code: str,
    age_recipient: str,
    verify_key: str,
    officials: tuple[str, ...],
) -> None:
    """Enrol a municipality that is not configured; until then it can request nothing.

    Prints the fingerprints of its age recipient and of its signing key: read both aloud to
    the partner over the phone and hear them confirmed before anything is sent.
    """
    from victim_support.enrolment import enrol

    config, _settings, state, _dir = _context(config_path)
    done = enrol(
        state,
        config,
        partner_id=partner_id,
        name=name,
        lg_code=lg_code,
        age_recipient=age_recipient,
        verify_key=verify_key,
        officials=list(officials),
        actor=f"os:{_operator()}",
        now=_now(),
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("enrolled {id}: {name} ({lg_code}), officials {officials}").format(
                id=d["id"], name=d["name"], lg_code=d["lg_code"], officials=", ".join(d["officials"])
            )
        )
        console.print("読み上げて確認してください / read aloud and have the partner confirm:")
        console.print(
            "  "
            + _("age recipient  {age_recipient_fingerprint}").format(
                age_recipient_fingerprint=d["age_recipient_fingerprint"]
            )
        )
        console.print(
            "  "
            + _("signing key    {verify_key_fingerprint}").format(verify_key_fingerprint=d["verify_key_fingerprint"])
        )

    output.current().result(done, render)


@partner.command("invite")
@click.argument("partner_id", metavar="ID")
@config_option()
@click.option(
    "--valid",
    default=24 * 3600,
    type=Duration(300, 7 * DAY),
    show_default="1d",
    help="How long the invitation can be used (5 minutes to 7 days).",
)
@common_options
def partner_invite(config_path: str, partner_id: str, valid: int) -> None:
    """Print a one-time invitation for a municipality to enrol itself through the portal.

    Give the path (with the portal's address in front) to the partner's official only; it is
    printed once and works once. Their form enrols nobody until `bcpctl partner confirm`.
    """
    from datetime import timedelta

    from victim_support.invitation import invite

    config, _settings, state, _dir = _context(config_path)
    done = invite(
        state, config, partner_id=partner_id, valid=timedelta(seconds=valid), actor=f"os:{_operator()}", now=_now()
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("招待 / invitation for {partner_id} (one use, until {expires_at}):").format(
                partner_id=d["partner_id"], expires_at=output.jst(d["expires_at"])
            )
        )
        console.print(f"  {d['path']}")

    output.current().result(done, render)


@partner.command("confirm")
@click.argument("partner_id", metavar="ID")
@config_option()
@click.option("--age-fingerprint", required=True, help="The age recipient's fingerprint as the official read it aloud.")
@click.option("--key-fingerprint", required=True, help="The signing key's fingerprint as the official read it aloud.")
@common_options
def partner_confirm(config_path: str, partner_id: str, age_fingerprint: str, key_fingerprint: str) -> None:
    """Enrol a partner whose official filled in the invitation once both fingerprints read aloud match (else exit 3)."""
    from victim_support.invitation import confirm

    config, _settings, state, _dir = _context(config_path)
    done = confirm(
        state,
        config,
        partner_id,
        age_fingerprint=age_fingerprint,
        key_fingerprint=key_fingerprint,
        actor=f"os:{_operator()}",
        now=_now(),
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("enrolled {id}: {name} ({lg_code}), officials {officials}").format(
                id=d["id"], name=d["name"], lg_code=d["lg_code"], officials=", ".join(d["officials"])
            )
        )

    output.current().result(done, render)


@partner.command("invitations")
@config_option()
@click.option(
    "--status",
    type=click.Choice(["waiting", "pending", "expired", "confirmed"]),
    default=None,
    help="Only these: waiting (not used yet), pending (submitted, awaiting the phone call), expired, confirmed.",
)
@common_options
def partner_invitations(config_path: str, status: str | None) -> None:
    """Invitations and where each stands; a pending one waits for `bcpctl partner confirm` after the phone call."""
    from victim_support.invitation import list_invitations

    _config, _settings, state, _dir = _context(config_path)
    found = list_invitations(state, _now(), status)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(_("id"), _("partner"), _("status"), _("municipality"), _("invited (JST)"), _("expires (JST)"),
                      _("submitted (JST)"), _("confirmed (JST)"))  # fmt: skip
        for d in data:
            town = f"{d['name']} ({d['lg_code']})" if d["name"] else "-"
            times = [output.jst(d[k]) if d[k] else "-" for k in ("created_at", "expires_at", "used_at", "confirmed_at")]
            table.add_row(d["id"], d["partner_id"], _(STATUS[d["status"]]), town, *times)
        console.print(table)
        if not data:
            console.print(_("no invitations"))
        elif any(d["status"] == "pending" for d in data):
            console.print(_("pending: call the official, hear both fingerprints, then: bcpctl partner confirm ID"))

    output.current().result(found, render)


@partner.command("remove")
@click.argument("partner_id", metavar="ID")
@config_option()
@common_options
def partner_remove(config_path: str, partner_id: str) -> None:
    """Remove a partner (enrolled or configured) and revoke every token it holds."""
    from victim_support.tokens import remove_partner

    config, _settings, state, _dir = _context(config_path)
    done = remove_partner(state, config, partner_id, actor=f"os:{_operator()}", now=_now())

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("removed {partner}; {tokens_revoked} tokens revoked").format(
                partner=d["partner"], tokens_revoked=d["tokens_revoked"]
            )
        )

    output.current().result(done, render)


@partner.command("list")
@config_option()
@common_options
def partner_list(config_path: str) -> None:
    """Partners that may ask now: configured and enrolled, without the removed ones."""
    from victim_support.enrolment import enrolled_officials

    config, _settings, state, _dir = _context(config_path)
    officials = enrolled_officials(state)
    rows = [
        {
            "id": pid,
            "name": p.name,
            "lg_code": p.lg_code,
            "enrolled": pid in officials,
            "officials": officials.get(pid, []),
        }
        for pid, p in config.partners.items()
    ]

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(_("id"), _("name"), "lg_code", _("how"), _("officials"))
        for d in data:
            how = _("enrolled") if d["enrolled"] else _("configured")
            table.add_row(d["id"], d["name"], d["lg_code"], how, ", ".join(d["officials"]))
        console.print(table)

    output.current().result(rows, render)


COMMANDS = [partner]
