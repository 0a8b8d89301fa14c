"""``repair index`` and ``repair snapshots``: restic's repair commands, for bcpctl repositories."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, repo_options
from dc.errors import N_, ProblemFound, UsageError

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def repair() -> None:
    """Repair a damaged repository: rebuild the index, drop what cannot be restored."""


def _render_index(console: Console, d: dict[str, Any]) -> None:
    for source, target in d["moved"]:
        console.print(_("moved {source} back to {target}").format(source=source, target=target), markup=False)
    for key in d["packs_indexed"]:
        console.print(_("indexed {key}").format(key=key), markup=False)
    verbs = {"packs_dropped": _("dropped from the index"), "removed": _("removed"), "left": _("left alone")}
    for group, verb in verbs.items():
        for p in d[group]:
            console.print(f"{verb}: {shown(p['object'])}: {shown(p['message'])}", markup=False)
    if d["blobs_lost"]:
        console.print(
            _(
                "{blobs_lost} blob(s) could not be read from any copy; 'bcpctl repair snapshots --forget' drops the "
                "files that use them"
            ).format(blobs_lost=len(d["blobs_lost"])),
            markup=False,
        )
    console.print(
        _(
            "read {packs_read} of {packs_stored} packs, indexed {packs_indexed}, salvaged {blobs_salvaged} blob(s) "
            "from {packs_salvaged} damaged pack(s), wrote {index_files_written} index file(s)"
        ).format(
            packs_read=d["packs_read"],
            packs_stored=d["packs_stored"],
            packs_indexed=len(d["packs_indexed"]),
            blobs_salvaged=d["blobs_salvaged"],
            packs_salvaged=len(d["packs_salvaged"]),
            index_files_written=len(d["index_files_written"]),
        )
    )


@repair.command("index")
@repo_options
@click.option("--read-all-packs", is_flag=True, help="Read and verify every pack, not only those no index names.")
@common_options
def repair_index_cmd(repo_url: str, password_file: str | None, escrow: tuple[str, ...], read_all_packs: bool) -> None:
    """Rebuild the index from the packs' own headers.

    Reads every pack that no readable index file names (or whose size changed), and with
    --read-all-packs every pack, verifying each blob; writes new index files, then removes the
    unreadable ones they replace. Moved packs and objects are put back where they belong. A
    damaged pack's readable blobs are copied into a new pack; nothing readable is deleted.
    """
    from backup.repair import repair_index

    out = output.current()
    with session.repository(repo_url, password_file, escrow=escrow) as repo:
        with out.progress(_("reading packs"), None, unit="packs") as bar:
            report = repair_index(
                repo, read_all=read_all_packs, progress=lambda done, total: bar.update(completed=done, total=total)
            )
    out.result(report, _render_index)


def _render_plan(console: Console, d: dict[str, Any]) -> None:
    for snap in d["snapshots"]:
        console.print(
            _("snapshot {id} ({system}, {time}): {verdict}").format(
                id=snap["id"][:8], system=snap["system"], time=output.jst(snap["time"]), verdict=snap["verdict"]
            )
        )
        for path in snap["dropped_files"][:20]:
            console.print("  " + _("damaged file {path}").format(path=f"{path!r}"), markup=False)
        if len(snap["dropped_files"]) > 20:
            console.print("  " + _("… and {more} more file(s)").format(more=len(snap["dropped_files"]) - 20))
        for tree in snap["lost_tree_blobs"]:
            console.print(
                "  " + _("unreadable tree blob {tree}: the files it listed are unknown").format(tree=tree[:16])
            )
    for obj in d["unreadable"]:
        console.print(
            _("unreadable snapshot object {object}: {message}").format(
                object=obj["object"], message=shown(obj["message"])
            ),
            markup=False,
        )
    if not d["snapshots"] and not d["unreadable"]:
        console.print(_("every snapshot can be restored; nothing to repair"))
    elif d["applied"]:
        rewritten, removed = len(d["rewritten"]), len(d["removed"])
        console.print(
            _("rewrote {rewritten} snapshot(s); removed {removed} original(s) or unreadable object(s)").format(
                rewritten=rewritten, removed=removed
            )
        )
    else:
        console.print(_("nothing was changed (repair with --forget)"))


@repair.command("snapshots")
@repo_options
@click.option(
    "--forget", is_flag=True, help="Rewrite damaged snapshots without what cannot be restored; remove originals."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required with --json or without a terminal).")
@click.option(
    "--read-data", is_flag=True, help="Read every blob the snapshots need, not only the index and pack sizes."
)
@common_options
def repair_snapshots_cmd(
    repo_url: str, password_file: str | None, escrow: tuple[str, ...], forget: bool, yes: bool, read_data: bool
) -> None:
    """List snapshots that cannot be fully restored; with --forget, rewrite them without the damage.

    Run 'bcpctl repair index' first: a blob that a lost index no longer names is not damaged.
    A rewritten snapshot keeps the original's time, system and source, records what was dropped
    and which snapshot it replaces, and is signed like any new snapshot; the original goes.
    Unreadable snapshot objects (that are no other bcpctl object) are removed too. Exit 1 when
    unrestorable snapshots remain.
    """
    from backup.snapshot_repair import apply_repair, plan_repair

    out = output.current()
    if forget and not yes and (out.json_mode or not sys.stdin.isatty()):
        raise UsageError(N_("repair snapshots --forget changes snapshots: confirm with --yes"))
    with session.repository(repo_url, password_file, escrow=escrow) as repo:
        plan = plan_repair(repo, read_data=read_data)
        if forget and plan.needed and not yes:
            _render_plan(out.console, output.to_jsonable(plan))
            if not click.confirm(_("rewrite these snapshots without the damaged files and remove the originals?")):
                raise ProblemFound(
                    N_("nothing was changed; {unrestorable} snapshot(s) cannot be fully restored"),
                    unrestorable=plan.unrestorable,
                )
        if forget and plan.needed:
            apply_repair(repo, plan)
    out.result(plan, _render_plan)
    if plan.needed and not plan.applied:
        raise ProblemFound(
            N_("{unrestorable} snapshot(s) cannot be fully restored; repair with --forget"),
            unrestorable=plan.unrestorable,
        )


COMMANDS = [repair]
