"""``forget`` (apply a retention policy) and ``prune`` (remove what nothing needs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from bcpctl import output, session
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, repo_options
from bcpctl.params import DAY, Count, Duration, FiniteFloat
from bcpctl.statuslabels import status_list
from bcpctl.tables import Table
from dc.errors import N_, UsageError

_GRACE_HELP = "Delete condemned data only once marked this long ago (longer than your longest backup)."
_COUNT_HELP = "Keep the newest snapshot of each of the N most recent {}s that have one"
#: 0 is allowed: an explicit "no grace" (tests, a repository nobody backs up to right now)
_GRACE = Duration(0, 365 * DAY)
_NO_GRACE = N_(
    "--grace 0: unreferenced data is deleted at once; a backup writing to this repository now "
    "loses the data it has written so far and its snapshot will not restore"
)


def _warn_without_grace(grace: int) -> None:
    if grace == 0:
        output.current().warn(_(_NO_GRACE))


def _render_prune(console: Console, report: dict[str, Any]) -> None:
    console.print(
        _(
            "prune: {packs_marked} pack(s) marked, {packs_deleted} deleted ({bytes_freed} bytes freed), "
            "{packs_repacked} repacked, {tombstones_pending} mark(s) waiting for the grace period"
        ).format(
            packs_marked=report["packs_marked"],
            packs_deleted=report["packs_deleted"],
            bytes_freed=report["bytes_freed"],
            packs_repacked=report["packs_repacked"],
            tombstones_pending=report["tombstones_pending"],
        )
    )
    if report.get("leftovers_removed"):
        console.print(
            _("prune: {leftovers_removed} temporary file(s) of killed writers removed").format(
                leftovers_removed=report["leftovers_removed"]
            )
        )
    if report.get("links_removed"):
        console.print(
            _("prune: {links_removed} manifest link(s) no verification reads any more removed").format(
                links_removed=report["links_removed"]
            )
        )
    for note in report["notes"]:
        console.print(_("prune: {note}").format(note=shown(note)))


@click.command("forget")
@repo_options
@click.option("--keep-last", type=Count(), default=0, help="Keep the N newest snapshots.")
@click.option("--keep-hourly", type=Count(), default=0, help=_COUNT_HELP.format("hour") + ".")
@click.option("--keep-daily", type=Count(), default=0, help=_COUNT_HELP.format("day") + ".")
@click.option("--keep-weekly", type=Count(), default=0, help=_COUNT_HELP.format("ISO week") + ".")
@click.option("--keep-monthly", type=Count(), default=0, help=_COUNT_HELP.format("month") + ".")
@click.option("--keep-yearly", type=Count(), default=0, help=_COUNT_HELP.format("year") + ".")
@click.option(
    "--keep-within",
    type=Duration(1, 100 * 366 * DAY),
    default=None,
    metavar="DURATION",
    help="Keep all newer than this (1s .. 100 years).",
)
@click.option("--system", default=None, help="Only consider snapshots of this system.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; the same decisions a real run makes.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Let the policy remove a system's newest snapshot too (by default it is always kept).",
)
@click.option("--prune", "do_prune", is_flag=True, help="Then remove data no snapshot needs.")
@click.option("--grace", type=_GRACE, default="24h", show_default=True, help=_GRACE_HELP)
@common_options
def forget(
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    keep_last: int,
    keep_hourly: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
    keep_within: int | None,
    system: str | None,
    dry_run: bool,
    allow_empty: bool,
    do_prune: bool,
    grace: int,
) -> None:
    """Remove snapshots that the retention policy does not keep (per system), optionally pruning.

    A count is a number N >= 0, or `unlimited` to keep every one (as restic); negative numbers
    are refused with exit 2. The newest snapshot of every system is always kept unless
    --allow-empty is given. --dry-run lists exactly what a run at the same moment removes.

    A postgres-wal system's WAL older than what its oldest kept base backup needs is removed
    too; from that base backup's first segment on, all of it stays.
    """
    from backup.forget import forget_snapshots
    from backup.prune import prune
    from backup.retention import RetentionPolicy
    from backup.walretention import forget_wal

    policy = RetentionPolicy(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within or 0
    )
    if dry_run and do_prune:
        raise UsageError(N_("--dry-run and --prune cannot be combined"))
    if do_prune:
        _warn_without_grace(grace)
    with session.repository(repo_url, password_file, escrow=escrow) as repo:
        decisions = forget_snapshots(
            repo, policy, now=datetime.now(UTC), system=system, dry_run=dry_run, allow_empty=allow_empty
        )
        forgotten = frozenset(d.id for d in decisions if not d.keep)
        wal = forget_wal(repo, system=system, forgotten=forgotten, dry_run=dry_run)
        pruned = prune(repo, grace_seconds=grace) if do_prune else None
    data = {
        "dry_run": dry_run,
        "keep": [d for d in decisions if d.keep],
        "remove": [d for d in decisions if not d.keep],
        "prune": pruned,
        "wal": [vars(w) for w in wal],
    }

    def render(console: Console, d: dict[str, Any]) -> None:
        table = Table(_("snapshot"), _("group"), _("time"), _("action"), _("kept by"))
        for row in d["keep"] + d["remove"]:
            table.add_row(
                row["id"][:8],
                row["group"],
                output.jst(row["time"]),
                _("keep") if row["keep"] else _("remove"),
                status_list(row["reasons"]),
            )
        console.print(table)
        for w in d["wal"]:
            verb = _("would remove") if d["dry_run"] else _("removed")
            console.print(
                _(
                    "WAL of {system}: {verb} {removed} file(s) older than {keep_from}, which the oldest kept base "
                    "backup needs; {kept} kept"
                ).format(
                    system=w["system"], verb=verb, removed=len(w["removed"]), keep_from=w["keep_from"], kept=w["kept"]
                ),
                markup=False,
            )
        if d["prune"]:
            _render_prune(console, d["prune"])

    output.current().result(data, render)


@click.command("prune")
@repo_options
@click.option("--grace", type=_GRACE, default="24h", show_default=True, help=_GRACE_HELP)
@click.option(
    "--max-unused",
    type=FiniteFloat(0, 1),
    default=0.25,
    show_default=True,
    help="Repack packs with more than this fraction of unused blobs.",
)
@common_options
def prune_cmd(repo_url: str, password_file: str | None, escrow: tuple[str, ...], grace: int, max_unused: float) -> None:
    """Remove data no snapshot needs, in two phases, without stopping backups."""
    from backup.prune import prune

    _warn_without_grace(grace)
    with session.repository(repo_url, password_file, escrow=escrow) as repo:
        report = prune(repo, grace_seconds=grace, max_unused=max_unused)
    output.current().result(report, _render_prune)


COMMANDS = [forget, prune_cmd]
