"""``check``: is every snapshot restorable, and (with --read-data) is every byte intact?"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from bcpctl import output, session
from bcpctl.i18n import _, error_message
from bcpctl.options import as_of_option, common_options, config_option, repo_options
from bcpctl.params import Checked
from dc.errors import N_, Message, ProblemFound


@click.command("check")
@repo_options
@click.option("--read-data", is_flag=True, help="Download, decrypt and verify every pack (or a --subset).")
@click.option(
    "--subset",
    default=None,
    type=Checked("subset", "backup.check:parse_subset"),
    metavar="N/M",
    help="With --read-data: only the N-th of M slices of packs.",
)
@click.option(
    "--integrity-only",
    is_flag=True,
    help="No key needed (the offsite): every object hashes to its name, the signed manifest verifies, "
    "every object the snapshots need is present.",
)
@click.option("--manifest-key", default=None, metavar="HEX", help="With --integrity-only: pinned manifest public key.")
@click.option("--known-hosts", type=click.Path(dir_okay=False), default=None, help="known_hosts for sftp:// URLs.")
@config_option(required=False)
@as_of_option
@common_options
def check(
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    read_data: bool,
    subset: str | None,
    integrity_only: bool,
    manifest_key: str | None,
    known_hosts: str | None,
    config_path: str | None,
    as_of: datetime | None,
) -> None:
    """Verify the repository's structure, and with --read-data its data. Exit 1 names any damage.

    Never writes to the repository. Packs that no index names are reported, not condemned: a
    lost index file leaves its packs unnamed, and 'bcpctl repair index' brings them back.

    With --config (or $BCPCTL_CONFIG), a keyed check of a configured site's repository is recorded in
    the control database like a scheduled one, so its result and age reach /metrics and alerts.
    """
    from backup.check import check_repository, parse_subset
    from dc.clock import utcnow

    if integrity_only:
        from bcpctl.commands.verifyoffsite import integrity_check

        integrity_check(
            repo_url, manifest_key=manifest_key, known_hosts=known_hosts, read_data=True, jobs=4, as_of=as_of
        )
        return

    parsed = parse_subset(subset) if subset else None
    consortium = session.config(config_path)[0] if config_path else None  # a bad config fails before the check
    out = output.current()
    started = utcnow()
    with session.repository(repo_url, password_file, escrow=escrow, read_only=True, as_of=as_of) as repo:
        with out.progress(_("reading packs"), repo.cache.counts()[1] if read_data else None, unit="packs") as bar:
            report = check_repository(repo, read_data=read_data, subset=parsed, progress=bar.advance)
        stored_url = repo.backend.url
    recorded = None
    if consortium is not None:
        from monitoring.checks import record_site_check

        recorded = record_site_check(consortium, stored_url, started, report, read_data=read_data)
    data = {
        "ok": report.ok,
        "snapshots": report.snapshots,
        "index_files": report.index_files,
        "packs": report.packs,
        "packs_read": report.packs_read,
        "blobs_read": report.blobs_read,
        "bytes_read": report.bytes_read,
        "unindexed_packs": report.unindexed_packs,
        "problems": [{"object": p.object, "message": p.message} for p in report.problems],
        "notes": [{"object": p.object, "message": p.message} for p in report.notes],
        "affected_snapshots": report.affected_snapshots,
        "remedies": report.remedies,
        "recorded_site": recorded,
    }

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("{snapshots} snapshots, {index_files} index files, {packs} packs").format(**d)
            + (_(", read {packs_read} packs / {blobs_read} blobs").format(**d) if read_data else "")
        )
        if d["unindexed_packs"]:
            console.print(_("{unindexed_packs} pack(s) in no index (see the notes)").format(**d))
        for p in d["notes"]:
            console.print(
                _("note {object}: {message}").format(object=shown(p["object"]), message=shown(p["message"])),
                markup=False,
            )
        for p in d["problems"]:
            console.print("[red]" + escape(_("damaged")) + f"[/red] {escape(shown(p['object']))}: ", end="")
            console.print(shown(p["message"]), markup=False)
        if d["affected_snapshots"]:
            console.print(_("snapshots affected: ") + ", ".join(s[:8] for s in d["affected_snapshots"]))
        if d["remedies"]:
            what = _("to repair, run in this order") if d["problems"] else _("suggested")
            console.print(f"{what}: " + _("; then ").join(shown(r) for r in d["remedies"]), markup=False)
        if d["ok"]:
            console.print(_("no errors were found"))
        if d["recorded_site"]:
            console.print(_("recorded as the newest check of site {site}").format(site=d["recorded_site"]))
        elif consortium is not None:
            console.print(_("not a configured site's repository: the check was not recorded"))

    out.result(data, render)
    if not report.ok:
        first = report.problems[0]
        raise ProblemFound(
            N_("check found {n_problems} problem(s), first: {object}: {message_}"),
            n_problems=len(report.problems),
            object=first.object,
            message_=first.message,
        )


COMMANDS = [check]


def shown(message: object) -> str:
    """A problem's line in the reader's language when the core made it a Message (else as it is)."""
    return error_message(message) if isinstance(message, Message) else str(message)
