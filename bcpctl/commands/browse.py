"""``ls``, ``find`` and ``dump``: looking inside snapshots without restoring them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.commands.repo import human_bytes
from bcpctl.i18n import _
from bcpctl.options import as_of_option, common_options, repo_options
from bcpctl.params import SnapshotPattern
from bcpctl.tables import Rows
from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console


def _long_row(entry: dict[str, Any]) -> list[str]:
    size = "" if entry["size"] is None else human_bytes(entry["size"])
    owner = "" if entry["uid"] is None else f"{entry['uid']}:{entry['gid']}"
    when = output.jst(entry["mtime"]) if entry["mtime"] else ""
    return [entry["mode"], owner, size, when, _name(entry)]


def _name(entry: dict[str, Any]) -> str:
    """The entry's name on one line (control characters escaped), with a link's target."""
    from backup.browse import shown

    arrow = {"symlink": " -> ", "hardlink": " => "}.get(entry["type"], "")
    return shown(entry["path"]) + (arrow + shown(entry["target"]) if arrow and entry["target"] is not None else "")


#: widths of the columns of a listing; a longer cell pushes its row, never cut
MODE, OWNER, SIZE, TIME, SHORT_ID = 10, 11, 10, 20, 8


def render_listing(console: Console, head: dict[str, Any], entries: Iterator[dict[str, Any]], *, long: bool) -> None:
    """``ls`` for people: one line per entry as it is read (never gathered; see :class:`Rows`)."""
    if not long:
        for entry in entries:
            console.file.write(_name(entry) + "\n")
        return
    columns = [(_("mode"), MODE), (_("owner"), OWNER), (_("size"), SIZE), (_("modified"), TIME), (_("path"), 0)]
    rows = Rows(console, columns, right={_("size")})
    rows.header()
    for entry in entries:
        rows.add(*_long_row(entry))


def render_matches(
    console: Console, head: dict[str, Any], matches: Iterator[dict[str, Any]], *, system_width: int
) -> None:
    """``find`` for people: one line per match as it is found, then how many."""
    from backup.browse import shown

    columns = [
        (_("snapshot"), SHORT_ID),
        (_("time"), TIME),
        (_("system"), max(system_width, 6)),
        (_("size"), SIZE),
        (_("path"), 0),
    ]
    rows = Rows(console, columns, right={_("size")})
    rows.header()
    count = 0
    for hit in matches:
        entry = hit["entry"]
        size = "" if entry["size"] is None else human_bytes(entry["size"])
        system = shown(hit["system"] or "")
        rows.add(hit["snapshot"][:SHORT_ID], output.jst(hit["time"]), system, size, _name(entry))
        count += 1
    console.file.write(
        _("{count} match(es) in {snapshots_searched} snapshot(s)\n").format(
            count=count, snapshots_searched=head["snapshots_searched"]
        )
    )


@click.command("ls")
@click.argument("snapshot_ref", metavar="SNAPSHOT")
@click.argument("path", required=False, default="")
@click.option("--long", "-l", "long_format", is_flag=True, help="Mode, owner, size and time of each entry.")
@click.option("--recursive", "-R", is_flag=True, help="Everything beneath PATH, not only its direct entries.")
@repo_options
@as_of_option
@common_options
def ls(
    snapshot_ref: str,
    path: str,
    long_format: bool,
    recursive: bool,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """List the entries of PATH (default: the root) in SNAPSHOT (id, id prefix, latest or latest:SYSTEM).

    PATH is relative to the snapshot's root (a leading / means that root too). Exit 2 when the
    snapshot holds no PATH.
    """
    from backup.browse import as_text, b64_if_not_utf8, list_entries
    from backup.patterns import snapshot_path
    from backup.snapref import find_snapshot

    snapshot_path(path)  # a bad path is refused before the repository is opened
    with session.repository(repo_url, password_file, escrow=escrow, sync=False, read_only=True, as_of=as_of) as r:
        snap = find_snapshot(r, snapshot_ref)
        entries = list_entries(r, snap, path, recursive=recursive)
        head = {"snapshot": snap.id, "path": as_text(path), "path_b64": b64_if_not_utf8(path)}
        output.current().stream(
            head, "entries", entries, lambda console, h, rows: render_listing(console, h, rows, long=long_format)
        )


@click.command("find")
@click.argument("pattern", type=SnapshotPattern())
@click.option(
    "--snapshot", "snapshot_refs", multiple=True, metavar="ID", help="Search only this snapshot (repeatable)."
)
@click.option("--system", default=None, help="Search only this system's snapshots.")
@click.option(
    "--newest",
    type=click.IntRange(1, 1_000_000),
    default=None,
    metavar="N",
    help="Search only the N newest snapshots (after --system).",
)
@repo_options
@as_of_option
@common_options
def find(
    pattern: str,
    snapshot_refs: tuple[str, ...],
    system: str | None,
    newest: int | None,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """Find entries matching PATTERN across snapshots, newest snapshot first.

    PATTERN follows the rules of docs/restore.md ("Patterns"): '*.sql' finds a name at any
    depth, 'data/**/*.csv' is anchored at the snapshot's root. Finding nothing is not an error.
    """
    from rich.cells import cell_len

    from backup.browse import find_entries, shown
    from backup.snapref import find_snapshot
    from backup.snapshot import list_snapshots

    if snapshot_refs and system:
        raise UsageError(N_("give --snapshot or --system, not both"))
    with session.repository(repo_url, password_file, escrow=escrow, sync=False, read_only=True, as_of=as_of) as r:
        if snapshot_refs:
            chosen = sorted(
                {s.id: s for s in (find_snapshot(r, ref) for ref in snapshot_refs)}.values(),
                key=lambda s: (s.time, s.id),
                reverse=True,
            )
        else:
            chosen = list(reversed(list_snapshots(r, system=system)))
        chosen = chosen[:newest] if newest else chosen
        found = find_entries(r, chosen, pattern)
        width = max((cell_len(shown(s.system or "")) for s in chosen), default=0)
        output.current().stream(
            {"pattern": pattern, "snapshots_searched": len(chosen)},
            "matches",
            found,
            lambda console, h, rows: render_matches(console, h, rows, system_width=width),
        )


@click.command("dump")
@click.argument("snapshot_ref", metavar="SNAPSHOT")
@click.argument("path", required=False, default=None)
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this new file instead of stdout (needed with --json).",
)
@click.option(
    "--table",
    default=None,
    metavar="SCHEMA.TABLE",
    help="From a PostgreSQL snapshot: this table's definition and rows as SQL (through pg_restore).",
)
@repo_options
@as_of_option
@common_options
def dump(
    snapshot_ref: str,
    path: str | None,
    output_path: str | None,
    table: str | None,
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    as_of: datetime | None,
) -> None:
    """Write one file of SNAPSHOT to stdout, byte for byte, verified against its SHA-256.

    PATH may be left out when the snapshot holds one file (a database dump, a command's
    output). --table SCHEMA.TABLE writes one table of a PostgreSQL snapshot as SQL instead.
    A file whose bytes differ from the backup record ends with exit 1: discard what was
    written. --output writes to a new file instead (never over an existing one).
    """
    from backup.browse import dump_file, file_entry, shown
    from backup.filedigest import recorded
    from backup.patterns import snapshot_path
    from backup.snapref import find_snapshot
    from backup.tabledump import table_sql

    out = output.current()
    if out.json_mode and output_path is None:
        raise UsageError(N_("--json needs --output FILE: stdout carries the file's bytes"))
    if path is not None and table is not None:
        raise UsageError(N_("give PATH or --table, not both"))
    if path is not None:
        snapshot_path(path)
    if output_path is None and output.stdout_closed():
        raise UsageError(N_("stdout is closed; give --output FILE to dump into a file"))
    if output_path is None and sys.stdout.isatty():
        out.notice(_("(writing a file's bytes to the terminal; use --output FILE or a pipe)"))
    with session.repository(repo_url, password_file, escrow=escrow, sync=False, read_only=True, as_of=as_of) as r:
        snap = find_snapshot(r, snapshot_ref)
        if table is not None:
            written = _write(table_sql(r, snap, table), output_path)
            data: dict[str, Any] = {"snapshot": snap.id, "table": table, "bytes": written, "verified": True}
        else:
            entry = file_entry(r, snap, path)
            written = _write(dump_file(r, snap, entry), output_path)
            algorithm, value = recorded(entry)
            data = {"snapshot": snap.id, "path": entry["path"], "bytes": written, algorithm: value}
            data["verified"] = True
    if output_path is not None:
        out.result(
            data,
            lambda c, d: c.print(
                _("wrote {bytes} to {output_path}, verified").format(
                    bytes=human_bytes(d["bytes"]), output_path=shown(output_path)
                ),
                markup=False,
            ),
        )


def _write(blobs: Any, output_path: str | None) -> int:
    written = 0
    if output_path is None:
        sink = sys.stdout.buffer
        for data in blobs:
            sink.write(data)
            written += len(data)
        sink.flush()
        return written
    try:
        fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise UsageError(N_("{output_path} exists; dump never writes over a file"), output_path=output_path) from None
    try:
        with os.fdopen(fd, "wb") as sink:
            for data in blobs:
                sink.write(data)
                written += len(data)
    except BaseException:
        os.unlink(output_path)
        raise
    return written


COMMANDS = [ls, find, dump]
