"""``replicate``: keyless offsite replication, and ``replicate --repair`` of a damaged copy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output
from bcpctl.commands.offsiteoptions import JOBS, KNOWN_HOSTS, MANIFEST_KEY, parse_delete_delay
from bcpctl.i18n import _, shown
from bcpctl.options import common_options, config_option
from bcpctl.params import DAY, Checked, Duration, FiniteFloat, byte_rate
from dc.errors import N_, ProblemFound, UsageError

if TYPE_CHECKING:
    from rich.console import Console


def _render_sync(console: Console, data: dict[str, Any]) -> None:
    from bcpctl.commands.repo import human_bytes
    from bcpctl.tables import Table

    for run in data["runs"]:
        phases = run["phases"]
        console.print(
            _(
                "{source} → {target}: copied {objects_copied} objects ({bytes_sent}) in {seconds}s, {mb_per_s} MB/s; "
                "{objects_present} already there"
            ).format(
                source=run["source"],
                target=run["target"],
                objects_copied=run["objects_copied"],
                bytes_sent=human_bytes(run["bytes_sent"]),
                seconds=f"{run['seconds']:.1f}",
                mb_per_s=f"{run['mb_per_s']:.1f}",
                objects_present=run["objects_present"],
            )
        )
        console.print(
            "  "
            + _(
                "packs {p[objects]}, indexes {i[objects]}, snapshots {s[objects]}, key slots/config {r[objects]}"
            ).format(p=phases["packs"], i=phases["indexes"], s=phases["snapshots"], r=phases["repository"])
        )
        signed = (
            _("manifest {manifest_sequence}").format(manifest_sequence=run["manifest_sequence"])
            if run["signed"]
            else _("UNSIGNED repository")
        )
        if run["not_intact"]:  # replication/holdback.py: the source's manifest was not copied
            held = (
                _("manifest {manifest_sequence}").format(manifest_sequence=run["target_sequence"])
                if run["target_sequence"] is not None
                else _("no signed manifest")
            )
            signed = _(
                "manifest {manifest_sequence} not copied ({not_intact} object(s) it names are intact at neither "
                "site; {held_back} held back), the target holds {held}"
            ).format(
                manifest_sequence=run["manifest_sequence"],
                not_intact=len(run["not_intact"]),
                held_back=run["held_back"],
                held=held,
            )
        console.print(f"  {signed}{' ' + _('(key pinned now)') if run['pinned_now'] else ''}")
        if run["deleted"] or run["pending_deletions"]:
            console.print(
                "  "
                + _("deleted {deleted}, awaiting the deletion delay {pending_deletions}").format(
                    deleted=len(run["deleted"]), pending_deletions=run["pending_deletions"]
                )
            )
        if run["locks_extended"]:
            console.print(
                "  "
                + _("Object Lock extended on {locks_extended} objects").format(locks_extended=run["locks_extended"])
            )
        if run["lag"]:
            table = Table(_("system"), _("newest at source"), _("newest at target"), _("lag"))
            for lag in run["lag"]:
                seconds = lag["lag_seconds"]
                table.add_row(
                    lag["system"],
                    output.jst(lag["source_newest"]),
                    output.jst(lag["target_newest"]),
                    "-" if seconds is None else f"{seconds:.0f}s",
                )
            console.print(table)
        for line in run["warnings"]:
            console.print("  " + _("warning: {line}").format(line=shown(line)))
        if run["unsigned_pending"]:
            console.print(
                "  "
                + _("{unsigned_pending} new snapshot(s) await the primary's signature").format(
                    unsigned_pending=len(run["unsigned_pending"])
                )
            )


@click.command("replicate")
@click.option("--from", "source_url", metavar="URL", default=None, help="Source repository (the primary).")
@click.option("--to", "target_url", metavar="URL", default=None, help="Target repository (the offsite copy).")
@config_option(required=False)
@click.option("--site", default=None, help="With --config: only this offsite site.")
@click.option("--system", default=None, help="With --config: report lag for this system only.")
@click.option("--verify", is_flag=True, help="Read every written object back from the target and hash it again.")
@click.option(
    "--repair",
    is_flag=True,
    help="Verify --to and put right what is damaged, missing, overwritten or deleted: from the storage's "
    "version history, else from --from.",
)
@click.option(
    "--limit-rate",
    default=None,
    type=Checked("rate", byte_rate),
    metavar="BYTES/s",
    help="Bandwidth limit, e.g. 5000000, 5M, 500KiB.",
)
@JOBS
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running until SIGTERM: ship new WAL every --interval, a full run when the manifest changes "
    "and every --reconcile. With --json, one JSON object per line per round that sent something or failed.",
)
@click.option(
    "--interval",
    type=FiniteFloat(0.1, 3600),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how often to look for new WAL at the source.",
)
@click.option(
    "--reconcile",
    type=FiniteFloat(1, 86400),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how often to list the target again in a full run.",
)
@click.option("--object-lock-days", type=click.IntRange(0, 36500), default=None, help="COMPLIANCE Object Lock days.")
@click.option(
    "--delete-delay",
    default=None,
    type=Duration(0, 3650 * DAY, as_text=True),
    metavar="DURATION",
    help="Keep deleted objects this long (default 7d).",
)
@MANIFEST_KEY
@KNOWN_HOSTS
@common_options
def replicate(
    source_url: str | None,
    target_url: str | None,
    config_path: str | None,
    site: str | None,
    system: str | None,
    verify: bool,
    repair: bool,
    limit_rate: str | None,
    jobs: int,
    follow: bool,
    interval: float,
    reconcile: float,
    object_lock_days: int | None,
    delete_delay: str | None,
    manifest_key: str | None,
    known_hosts: str | None,
) -> None:
    """Copy a repository's ciphertext to another site; never needs the passphrase.

    Copies what the target lacks in commit order (key slots, packs, indexes, snapshots, then
    the signed manifest), checks every object against its SHA-256 name on arrival and resumes
    after any interruption. Refuses a forged or rolled-back snapshot set.

    A signed manifest that names objects neither site holds intact (a pack missing, cut
    short or damaged at the source) is not copied, but the run goes on: every intact pack goes, the
    target moves to the newest signed state it holds whole (or stays where it is), and the
    run exits 1 with "refusing manifest N of URL: it names K object(s) that neither site
    holds intact (truncated?)"; --json counts what was copied and held back. The next run
    after the source is mended ships the rest and the manifest.

    With --repair (--to DAMAGED, optionally --from OTHER) it copies nothing new: every object
    verify-offsite reports is made right, from an intact older version the storage kept (S3
    versioning / Object Lock) or else from --from, and retained --object-lock-days.

    With --follow it keeps running (one offsite site) so the offsite's recovery point trails
    the primary's WAL archive by about --interval: start-up is paid once. SIGTERM or Ctrl-C
    lets the objects in flight finish, then it exits 0.
    """
    from replication.plan import DEFAULT_DELETE_DELAY
    from storage.ratelimit import parse_rate

    by_url = source_url is not None or target_url is not None
    if repair and (config_path is not None or not target_url):
        raise UsageError(N_("--repair needs --to DAMAGED (and --from OTHER unless its storage keeps versions)"))
    if by_url == (config_path is not None):
        raise UsageError(N_("give --from URL --to URL, or --config FILE"))
    if by_url and not (source_url and target_url) and not repair:
        raise UsageError("--from and --to go together")
    if follow and (repair or system is not None):
        raise UsageError("--follow replicates everything to one site: it does not go with --repair or --system")
    if manifest_key is not None and (len(manifest_key) != 64 or any(c not in "0123456789abcdef" for c in manifest_key)):
        raise UsageError(N_("--manifest-key must be 64 lowercase hex digits (see 'bcpctl manifest sign')"))
    given_delay = parse_delete_delay(delete_delay)
    delay = DEFAULT_DELETE_DELAY if given_delay is None else given_delay
    rate = parse_rate(limit_rate) if limit_rate else None
    if repair:
        assert target_url is not None  # --repair without --to was refused above
        _repair(source_url, target_url, known_hosts, manifest_key, jobs, object_lock_days or 0)
        return
    from bcpctl import session
    from replication.jobs import Endpoint, replicate_between, replicate_sites
    from replication.sync import SyncOptions, SyncProgress

    consortium, config_dir = session.config(config_path) if config_path else (None, None)

    options = SyncOptions(
        jobs=jobs,
        verify=verify,
        limit_rate=rate,
        object_lock_days=object_lock_days or 0,
        delete_delay=delay,
        pinned_key=manifest_key,
    )
    if follow:
        from bcpctl.commands.follow import run_follow

        endpoints = (Endpoint(source_url, known_hosts), Endpoint(target_url, known_hosts)) if by_url else None  # type: ignore[arg-type]
        run_follow(
            endpoints,
            consortium,
            config_dir,
            options,
            interval=interval,
            reconcile=reconcile,
            site=site,
            object_lock_days=object_lock_days,
            delete_delay=delay if delete_delay else None,
        )
        return
    with output.current().progress(_("replicating")) as bar:
        progress = SyncProgress(start=lambda total: bar.update(total=total), advance=bar.advance)
        if consortium is None:
            endpoints = (Endpoint(source_url, known_hosts), Endpoint(target_url, known_hosts))  # type: ignore[arg-type]
            runs = [replicate_between(*endpoints, options, progress=progress)]
        else:
            runs = replicate_sites(
                consortium,
                config_dir,
                options,
                site=site,
                system=system,
                object_lock_days=object_lock_days,
                delete_delay=delay if delete_delay else None,
                progress=progress,
            )
    out = output.current()
    out.result({"ok": all(r.ok for r in runs), "runs": runs}, _render_sync)
    problems = [problem for r in runs if (problem := r.problem())]
    if problems:
        raise ProblemFound(problems[0])


def _repair(
    source_url: str | None, damaged_url: str, known_hosts: str | None, manifest_key: str | None, jobs: int, days: int
) -> None:
    from replication.jobs import Endpoint, repair_between

    source = Endpoint(source_url, known_hosts) if source_url else None
    fixed = repair_between(
        source, Endpoint(damaged_url, known_hosts), pinned_key=manifest_key, jobs=jobs, lock_days=days
    )
    output.current().result(fixed, _render_repair)
    if not fixed.ok:
        first = next(iter(fixed.unrepairable.items()), None)
        detail = f"{first[0]}: {first[1]}" if first else f"{fixed.remaining[0].key}: {fixed.remaining[0].detail}"
        raise ProblemFound(N_("repair of {url} incomplete: {detail}"), url=fixed.url, detail=detail)


def _render_repair(console: Console, data: dict[str, Any]) -> None:
    where = (
        _("from {source} or the storage's history").format(source=data["source"])
        if data["source"]
        else _("from the storage's history")
    )
    console.print(
        _("{url}: {found} problem(s) found, {repaired} repaired {where}").format(
            url=data["url"], found=len(data["found"]), repaired=len(data["repaired"]), where=where
        )
    )
    for key in data["repaired"]:
        console.print("  " + _("repaired: {key}: {how}").format(key=key, how=data["how"][key]))
    for key, why in data["unrepairable"].items():
        console.print("  " + _("not repaired: {key}: {why}").format(key=key, why=why))
    for problem in data["remaining"]:
        console.print(
            "  " + _("remaining: {key}: {detail}").format(key=problem["key"], detail=shown(problem["detail"]))
        )


COMMANDS = [replicate]
