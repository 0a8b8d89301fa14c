"""``export return|whereabouts``: the shelter's PFIF notes coming back, and where each resident is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.commands.export import _context, _now, export
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.tables import Table
from dc.errors import N_

#: a notes document is bounded by victim_support.pfifnote; a signature is a few hundred bytes
_MAX_SIGNATURE = 4096


@export.command("return")
@config_option()
@click.option("--partner", required=True, help="The partner whose registered verify_key signed the notes.")
@click.option(
    "--notes", "notes_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PFIF 1.4 notes."
)
@click.option(
    "--signature",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Its SSH signature (ssh-keygen -Y sign -n bcpctl-pfif-notes); default NOTES.sig.",
)
@common_options
def export_return(config_path: str, partner: str, notes_path: Path, signature: Path | None) -> None:
    """Record the PFIF 1.4 notes a partner sends back (where its evacuees are), signed with its key.

    Unsigned or forged notes exit 3 and nothing is stored; a malformed document exits 2.
    Every note is kept: conflicting notes are shown side by side by 'export whereabouts'.
    """
    from victim_support.deletion import read_bounded
    from victim_support.notes import receive_notes
    from victim_support.pfifnote import MAX_NOTES_BYTES

    config, settings, state, _dir = _context(config_path)
    document = read_bounded(notes_path, MAX_NOTES_BYTES, "notes document")
    sig_path = signature or notes_path.with_name(notes_path.name + ".sig")
    armored = (
        read_bounded(sig_path, _MAX_SIGNATURE, "signature").decode("ascii", errors="replace")
        if sig_path.exists()
        else None
    )
    result = receive_notes(
        state, config, settings, partner=partner, document=document, signature=armored, now=_now(), via="cli"
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _(
                "{stored} notes stored from {partner}, {already_recorded} already recorded (audit entry {audit_seq})"
            ).format(
                stored=d["stored"],
                partner=d["partner"],
                already_recorded=d["already_recorded"],
                audit_seq=d["audit_seq"],
            )
        )
        for note_id in d["changed"]:
            console.print(
                "  " + _("not stored: {note_id} was recorded before with other content").format(note_id=note_id)
            )

    output.current().result(result, render)


@export.command("whereabouts")
@config_option()
@click.option("--tenant", required=True, help="The home town.")
@click.option("--names", is_flag=True, help="Name each person from the newest replica (the home town's officials).")
@click.option(
    "--disaster-id",
    default=None,
    help="With --names: each person's 被災者台帳 entry of this disaster beside the shelter.",
)
@common_options
def export_whereabouts(config_path: str, tenant: str, names: bool, disaster_id: str | None) -> None:
    """The home town's 被災者台帳 view from returned notes: per person the shelter, who said so, every note.

    Notes name people by the pseudonym their partner received; --names recomputes it from the
    newest replica with the town's own secret and shows each resident's name and 町字; with
    --disaster-id also their 台帳 entry (被害, 罹災証明書, 援護) from the replica. The shelter
    column lives in bcpctl's control database, never in the town's own system.
    """
    from victim_support.notes import name_residents, whereabouts

    config, settings, state, config_dir = _context(config_path)
    if tenant not in config.tenants:
        from dc.errors import UsageError

        raise UsageError(
            N_("unknown tenant '{tenant}' (known: {tenants})"), tenant=tenant, tenants=", ".join(config.tenants)
        )
    if disaster_id and not names:
        from dc.errors import UsageError

        raise UsageError(N_("--disaster-id needs --names (the 台帳 entry is read for the named residents)"))
    rows = whereabouts(state, tenant)
    if names and rows:
        rows = name_residents(config, settings, tenant, rows, config_dir=config_dir, disaster_id=disaster_id)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(
            _("person"),
            "被害 / damage",
            "避難先 / shelter",
            _("status"),
            _("said by"),
            _("at"),
            _("notes"),
            _("conflict"),
        )
        for d in data:
            ledger = d.get("ledger") or {}
            table.add_row(
                d["resident"] or f"{d['partner']}/{d['person_ref'][:12]}",
                " / ".join(v for v in (ledger.get("damage"), ledger.get("certificate"), ledger.get("aid")) if v) or "—",
                d["shelter"] or "—",
                d["status"] or "—",
                d["said_by"],
                output.jst(d["said_at"]),
                str(len(d["history"])),
                "矛盾 / CONFLICT" if d["conflict"] else "",
            )
        console.print(table)

    output.current().result(rows, render)


COMMANDS = [export]
