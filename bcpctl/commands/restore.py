"""``restore``: a snapshot into a directory or a database, or a postgres-wal system to a point in time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.commands.repo import human_bytes
from bcpctl.i18n import _, error_message
from bcpctl.options import as_of_option, common_options, config_option, escrow_option, pattern_option
from bcpctl.params import Checked
from dc.errors import N_, Message, ProblemFound, UsageError, joined

if TYPE_CHECKING:  # rich is slow to import; only a terminal needs it
    from datetime import datetime

    from rich.console import Console

    from backup.restoretarget import Overwrite


@click.command("restore")
@click.argument("snapshot_ref", metavar="SNAPSHOT|SYSTEM")
@click.option("--repo", "repo_url", envvar="BCPCTL_REPO", default=None, metavar="URL", help="Repository.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the passphrase from this file instead of $BCPCTL_PASSWORD.",
)
@click.option("--target", type=click.Path(file_okay=False), default=None, help="Directory to restore into.")
@click.option(
    "--target-dsn", default=None, metavar="DSN", help="PostgreSQL database to restore a postgres snapshot into."
)
@click.option(
    "--overwrite",
    type=click.Choice(["never", "if-changed", "always"]),
    default="never",
    show_default=True,
    help="What to do with what --target already holds: never (refuse a non-empty target, "
    "or the path the snapshot was taken from), if-changed (keep entries that already match, "
    "replace the rest) or always (replace).",
)
@pattern_option(
    "--include", "Restore only matching paths and what is beneath them (repeatable; docs/restore.md, Patterns)."
)
@pattern_option("--exclude", "Leave out matching paths and what is beneath them (repeatable; wins over --include).")
@click.option(
    "--to-time",
    type=Checked("time", "backup.pitr:parse_moment"),
    default=None,
    metavar="TIME",
    help="A postgres-wal SYSTEM as it was at TIME "
    "('2026-12-06 03:14:15 JST' or ISO 8601 with offset): base backup + WAL replay.",
)
@click.option("--to-lsn", default=None, metavar="LSN", help="A postgres-wal SYSTEM up to WAL position LSN.")
@click.option("--to-latest", is_flag=True, help="A postgres-wal SYSTEM up to the end of its WAL archive.")
@click.option(
    "--target-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --to-*: the new cluster's data directory (empty or new).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="With --to-*: the restored cluster's port.")
@click.option("--keep-running", is_flag=True, help="With --to-*: leave the restored cluster running.")
@click.option(
    "--tablespace-map",
    "tablespace_map",
    multiple=True,
    metavar="OID=PATH|NAME=PATH",
    help="With --target-dir: restore that tablespace at PATH, an empty or new directory beside the target "
    "(default: TARGET-DIR/pg_tblspc_data/OID); a key that is one tablespace's OID and another's name is "
    "refused. Repeatable.",
)
@config_option(required=False)
@escrow_option
@as_of_option
@common_options
def restore(
    snapshot_ref: str,
    repo_url: str | None,
    password_file: str | None,
    escrow: tuple[str, ...],
    target: str | None,
    target_dsn: str | None,
    as_of: datetime | None,
    overwrite: Overwrite,
    includes: tuple[str, ...],
    excludes: tuple[str, ...],
    to_time: str | None,
    to_lsn: str | None,
    to_latest: bool,
    target_dir: str | None,
    port: int | None,
    keep_running: bool,
    tablespace_map: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Restore SNAPSHOT (id, id prefix, latest or latest:SYSTEM) and verify it.

    Every file's SHA-256 and, for databases, every table's row count are compared with what
    the backup recorded. Files that cannot be restored (a damaged or missing blob) are named
    and exit 1, after everything else is restored and verified. Links come back as links,
    never followed; nothing is written outside --target.

    With --to-time, --to-lsn or --to-latest, restore the postgres-wal SYSTEM of --config into
    --target-dir: the newest base backup that ended before the target, WAL replayed up to it,
    the cluster promoted, its smoke query run and its tables counted. Its tablespaces are
    restored under --target-dir (or where --tablespace-map puts them), never at the primary's
    paths.
    """
    from backup.dbrestore import restore_postgres, verify_sqlite
    from backup.patterns import Selection
    from backup.restorer import restore_snapshot
    from backup.snapref import find_snapshot

    if sum((to_time is not None, to_lsn is not None, to_latest)) > 1:
        raise UsageError(N_("give one of --to-time, --to-lsn and --to-latest"))
    if to_time is not None or to_lsn is not None or to_latest:
        _restore_to_point(
            snapshot_ref, config_path, to_time, to_lsn, target_dir, target, target_dsn, port, keep_running,
            tablespace_map,
        )  # fmt: skip
        return
    if tablespace_map:
        raise UsageError(
            N_("--tablespace-map places a postgres-wal restore's tablespaces: give --to-time, --to-lsn or --to-latest")
        )
    if repo_url is None:
        raise UsageError(N_("restore needs --repo URL (or $BCPCTL_REPO)"))
    if (target is None) == (target_dsn is None):
        raise UsageError(N_("give exactly one of --target DIR or --target-dsn DSN"))
    if target_dsn is not None and (includes or excludes):
        raise UsageError(
            N_("--include and --exclude choose files; a database restore (--target-dsn) takes the whole dump")
        )
    selection = Selection(includes, excludes)
    out = output.current()
    with session.repository(repo_url, password_file, escrow=escrow, read_only=True, as_of=as_of) as repo:
        snap = find_snapshot(repo, snapshot_ref)
        # the snapshot's total is only what a whole restore writes
        total = snap.summary.get("bytes_total") if selection.everything else None
        with out.progress(_("restoring {short_id}").format(short_id=snap.short_id), total) as bar:
            if target_dsn is not None:
                db = restore_postgres(repo, snap, target_dsn, progress=bar.advance)
                data: dict[str, Any] = {
                    "snapshot": snap.id,
                    "target": db.target,
                    "bytes": db.bytes,
                    "tables": db.tables,
                    "verified": True,
                    "seconds": db.seconds,
                }
            else:
                assert target is not None  # exactly one of --target and --target-dsn, checked above
                res = restore_snapshot(
                    repo,
                    snap,
                    Path(target),
                    overwrite=overwrite,
                    progress=bar.advance,
                    select=None if selection.everything else selection,
                    on_total=None if selection.everything else lambda n: bar.update(total=n),
                )
                data = {
                    "snapshot": snap.id,
                    "target": res.target,
                    "files": res.files,
                    "dirs": res.dirs,
                    "symlinks": res.symlinks,
                    "hardlinks": res.hardlinks,
                    "specials": res.specials,
                    "unchanged": res.unchanged,
                    "skipped": res.skipped,
                    "skipped_count": res.skipped_count,
                    "owners_not_kept": res.warnings,
                    "owners_not_kept_count": res.warnings_count,
                    "bytes": res.bytes,
                    "verified_files": res.verified_files,
                    "verified": True,
                    "seconds": res.seconds,
                }
                if snap.source_kind == "sqlite" and selection.everything:
                    name = Path(snap.source_spec).name
                    mismatches = verify_sqlite(snap, Path(res.target) / name)
                    if mismatches:
                        table, (want, got) = next(iter(mismatches.items()))
                        raise ProblemFound(
                            N_("restored table {table} has {got} rows, the backup recorded {want}"),
                            table=table,
                            got=got,
                            want=want,
                        )
                    data["tables"] = snap.verify.get("tables", {})

    def text(d: dict[str, Any]) -> str:
        if "files" in d:
            what = _("{count} files, ").format(count=d.get("files", 0))
        else:
            what = _("{count} tables, ").format(count=len(d.get("tables", {})))
        line = _("restored snapshot {short_id} to {target}: {what}{size} in {seconds}s, verified")
        return line.format(
            short_id=d["snapshot"][:8],
            target=d["target"],
            what=what,
            size=human_bytes(d["bytes"]),
            seconds=f"{d['seconds']:.1f}",
        )

    if count := data.get("owners_not_kept_count"):
        out.warn(
            _listed(
                N_("{count} entries restored without their recorded owner or setuid/setgid bits: {shown}{more}"),
                data["owners_not_kept"],
                count,
            )
        )
    out.line(data, text)
    if count := data.get("skipped_count"):
        out.notice(_listed(N_("warning: {count} entries not recreated: {shown}{more}"), data["skipped"], count))


def _listed(template: str, named: list[str], count: int) -> str:
    """A restore's warning line in the operator's language: the first five entries named, the rest counted."""
    more = Message(N_("; and {count} more"), count=count - 5) if count > 5 else ""
    return error_message(Message(template, count=count, shown=joined(named[:5]), more=more))


def _restore_to_point(
    system_id: str,
    config_path: str | None,
    to_time: str | None,
    to_lsn: str | None,
    target_dir: str | None,
    target: str | None,
    target_dsn: str | None,
    port: int | None,
    keep_running: bool,
    tablespace_map: tuple[str, ...],
) -> None:
    from backup.pitr import RecoveryTarget, parse_moment, restore_to, restore_to_database
    from backup.tablespacemap import parse_mapping
    from backup.walseq import parse_lsn

    if config_path is None:
        raise UsageError(N_("--to-time, --to-lsn and --to-latest restore a configured system: give --config FILE"))
    if target is not None:
        raise UsageError(
            N_("a point-in-time restore writes a cluster (--target-dir DIR) or a database (--target-dsn DSN)")
        )
    if (target_dir is None) == (target_dsn is None):
        raise UsageError(
            N_("give exactly one of --target-dir DIR (a new cluster) or --target-dsn DSN (an existing database)")
        )
    point = RecoveryTarget(
        time=parse_moment(to_time) if to_time is not None else None,
        lsn=parse_lsn(to_lsn) if to_lsn is not None else None,
    )
    consortium, _config_dir = session.config(config_path)
    resolved = Path(config_path).resolve()
    mapping = parse_mapping(tablespace_map)
    if target_dsn is not None:
        if mapping:
            raise UsageError(
                N_("--tablespace-map is for --target-dir: a --target-dsn restore recovers in a private scratch cluster")
            )
        result = restore_to_database(consortium, resolved, system_id, point, target_dsn)
    else:
        assert target_dir is not None  # exactly one of the two, checked above
        result = restore_to(
            consortium, resolved, system_id, point, Path(target_dir), port=port, keep_running=keep_running,
            tablespace_map=mapping,
        )  # fmt: skip

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _(
                "{system} restored to {target} in {target_dir} from base {base_snapshot}: last transaction "
                "{recovered_to}, {tables} tables, RTO {rto_seconds}s (base {base_seconds}s + replay "
                "{replay_seconds}s)"
            ).format(
                system=d["system"],
                target=d["target"],
                target_dir=d["target_dir"],
                base_snapshot=d["base_snapshot"][:8],
                recovered_to=d["recovered_to"] or _("none replayed"),
                tables=len(d["tables"]),
                rto_seconds=f"{d['rto_seconds']:.1f}",
                base_seconds=f"{d['base_seconds']:.1f}",
                replay_seconds=f"{d['replay_seconds']:.1f}",
            ),
            markup=False,
        )

    output.current().result(vars(result) | {"rto_seconds": result.rto_seconds}, render)


COMMANDS = [restore]
