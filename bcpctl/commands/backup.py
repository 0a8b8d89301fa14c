"""``backup run``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.anomalytext import anomaly_warning
from bcpctl.commands.repo import human_bytes
from bcpctl.i18n import _, error_message
from bcpctl.options import common_options, config_option, escrow_option, key_value_pairs, pattern_option
from dc.errors import N_, Message, ProblemFound, UsageError, joined

if TYPE_CHECKING:  # rich is slow to import; only a terminal needs it
    from rich.console import Console

    from backup.run import BackupRequest
    from bcpctl.output import ProgressBar


@click.group()
def backup() -> None:
    """Back systems up into the repository."""


def _render_results(console: Console, data: dict[str, Any]) -> None:
    from bcpctl.tables import Table

    table = Table(
        _("system"), _("snapshot"), _("files new/changed/same"), _("read"), _("added"), _("seconds"), _("status")
    )
    for row in data["backups"]:
        r = row.get("result") or {}
        counts = f"{r.get('files_new', 0)}/{r.get('files_changed', 0)}/{r.get('files_unmodified', 0)}" if r else ""
        error = error_message(row["error"]) if isinstance(row["error"], Message) else row["error"]
        status = _("ok") if row["ok"] else _("FAILED: {error}").format(error=error)
        table.add_row(
            row["system"] or r.get("source", ""),
            (r.get("snapshot_id") or "")[:8],
            counts,
            human_bytes(r.get("bytes_read", 0)),
            human_bytes(r.get("bytes_added", 0)),
            f"{r.get('seconds', 0):.1f}",
            status,
        )
    console.print(table)


@contextmanager
def _totals(request: BackupRequest, bar: ProgressBar) -> Iterator[Callable[[int], None]]:
    """The progress callback; for a path source on a terminal, with the totals a concurrent
    count of the source finds (:mod:`backup.prescan`), so the bar shows an ETA."""
    if request.source.kind != "path" or not output.current().interactive:
        yield bar.advance
        return
    from backup.prescan import Prescan

    with Prescan(request.source.value, request.exclude) as scan:
        known = False
        lock = threading.Lock()  # writer threads report progress too

        def advance(amount: int) -> None:
            nonlocal known
            with lock:
                if not known and (totals := scan.poll()) is not None:
                    known = True
                    bar.update(total=totals.bytes, description=f"backing up {totals.files} files")
            bar.advance(amount)

        yield advance


@backup.command("run")
@click.option(
    "--repo",
    "repo_url",
    envvar="BCPCTL_REPO",
    default=None,
    metavar="URL",
    help="Repository (default with --config: the primary site's).",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the passphrase from this file instead of $BCPCTL_PASSWORD.",
)
@click.option(
    "--source",
    "source_text",
    default=None,
    metavar="KIND:SPEC",
    help="path:DIR, sqlite:FILE, postgres:DSN or command:CMD.",
)
@click.option("--system", "systems", multiple=True, help="System id (repeatable; with --config selects systems).")
@click.option("--tenant", default=None, help="Tenant id recorded with an ad-hoc backup.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="K=V",
    callback=key_value_pairs,
    help="Tag recorded with the snapshot (repeatable).",
)
@pattern_option("--exclude", "Skip matching paths and what is beneath them (repeatable; docs/restore.md, Patterns).")
@escrow_option
@config_option(required=False)
@common_options
def backup_run(
    repo_url: str | None,
    password_file: str | None,
    source_text: str | None,
    systems: tuple[str, ...],
    tenant: str | None,
    tags: dict[str, str],
    excludes: tuple[str, ...],
    escrow: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Back up one source (--source) or the configured systems (--config)."""
    from backup.jobs import SystemBackup, backup_systems
    from backup.run import BackupRequest, refuse_reserved, run_backup
    from backup.sources import parse_source

    for system in systems:
        refuse_reserved(system)
    out = output.current()
    with out.progress(_("backing up")) as bar:
        if source_text is not None:
            if not repo_url:
                raise UsageError(N_("--source needs --repo (or use --config)"))
            request = BackupRequest(
                parse_source(source_text),
                system=systems[0] if systems else None,
                tenant=tenant,
                tags=tags,
                exclude=excludes,
            )
            with _totals(request, bar) as progress, session.repository(repo_url, password_file, escrow=escrow) as repo:
                result = run_backup(repo, request, progress=progress)
            outcomes = [
                SystemBackup(request.system or "", not result.errors, result, joined(result.errors[:3]) or None)
            ]
        elif config_path is not None:
            consortium, config_dir = session.config(config_path)
            for system_id in systems:
                consortium.system(system_id)
            if escrow and not repo_url:
                raise UsageError(N_("--escrow unlocks the repository given with --repo; add --repo URL"))
            from backup.jobs import site_repository
            from dc.state import open_state

            state = open_state(consortium.control_db)
            if repo_url:
                cm = session.repository(repo_url, password_file, escrow=escrow)
            else:
                cm = site_repository(consortium, consortium.primary_site, config_dir)
            with cm as repo:
                outcomes = backup_systems(
                    consortium, repo, list(systems) or None, state=state, config_dir=config_dir, progress=bar.advance
                )
        else:
            raise UsageError(N_("give --source KIND:SPEC with --repo, or --config FILE"))
    data = {"ok": all(o.ok for o in outcomes), "backups": [vars(o) for o in outcomes]}
    for o in outcomes:
        if o.anomaly:
            out.warn(anomaly_warning(o.system, o.anomaly, o.last_known_good))
    out.result(data, _render_results)
    if not data["ok"]:
        failed = [o.system or "source" for o in outcomes if not o.ok]
        raise ProblemFound(N_("backup incomplete for {failed}"), failed=", ".join(failed))


COMMANDS = [backup]
