"""``wal push`` and ``wal get``: PostgreSQL's ``archive_command`` and ``restore_command``.

PostgreSQL starts one of these per WAL file, so both first ask the spool (backup/walspool.py)
whether the file was already fetched or archived ahead, and only then import the session,
read the configuration and open the repository: a file answered from the spool costs a
process start (docs/performance.md, "WAL"). ``session`` is imported in the functions for
the same reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def wal() -> None:
    """Archive and fetch a postgres-wal system's WAL (run by its PostgreSQL server)."""


_system_option = click.option(
    "--system", "system_id", required=True, envvar="BCPCTL_SYSTEM", help="The postgres-wal system (configured)."
)


@wal.command("push")
@click.argument("path", metavar="PATH", type=click.Path(dir_okay=False))
@_system_option
@click.option(
    "--ahead",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="Also archive up to N segments PostgreSQL already marked ready (one repository unlock for N+1).",
)
@click.option(
    "--spool",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory recording what --ahead or push-daemon archived (a later push of those bytes exits 0 from it).",
)
@click.option(
    "--wait",
    type=click.IntRange(0, 600),
    default=10,
    show_default=True,
    help="While a push-daemon runs on --spool, wait up to this many seconds for its record before pushing here.",
)
@config_option()
@common_options
def wal_push(path: str, system_id: str, ahead: int, spool: str | None, wait: int, config_path: str) -> None:
    """Archive the WAL file PATH (archive_command = 'bcpctl wal push %p --system …').

    Exit 0 only once the file is durably stored, compressed and encrypted; PostgreSQL then
    recycles it. A file the archive already holds with the same bytes is success; with other
    bytes it is an error (exit 1): archived history is never overwritten.
    """
    from backup.walspool import await_record

    spool_dir = _spool_dir("--ahead", ahead, spool, "where what was archived ahead is recorded")
    result = await_record(system_id, Path(path), spool_dir, wait) if spool_dir else None
    if result is None:
        from backup.waljobs import wal_push as push
        from bcpctl import session

        consortium, config_dir = session.config(config_path)
        result = push(consortium, config_dir, system_id, Path(path), spool=spool_dir, ahead=ahead)

    def render(console: Console, d: dict[str, Any]) -> None:
        state = (
            _("already archived")
            if d["already_archived"]
            else _("archived ({stored} bytes stored)").format(stored=d["stored"])
        )
        console.print(
            _("{name} of {system}: {state}").format(name=d["name"], system=d["system"], state=state), markup=False
        )

    output.current().result(vars(result), render)


@wal.command("push-daemon")
@_system_option
@click.option(
    "--pg-data",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The server's data directory (its pg_wal/archive_status is watched).",
)
@click.option(
    "--spool",
    required=True,
    type=click.Path(file_okay=False),
    help="The directory archive_command's 'wal push %p --spool DIR' reads the records from.",
)
@click.option(
    "--interval-ms",
    "interval_ms",
    type=click.IntRange(10, 60_000),
    default=100,
    show_default=True,
    help="Milliseconds between looks at archive_status when nothing is ready.",
)
@config_option()
@common_options
def wal_push_daemon(system_id: str, pg_data: str, spool: str, interval_ms: int, config_path: str) -> None:
    """Archive ready WAL segments as PostgreSQL marks them, one repository unlock for all.

    Run one per database host (under systemd, as the server's account) beside an
    archive_command of 'bcpctl wal push %p --spool DIR': that push then exits 0 from this
    daemon's record, and pushes the segment itself when the daemon is absent or behind.
    SIGTERM finishes the segment in flight and exits 0.
    """
    import signal
    import threading

    from backup.waljobs import wal_push_daemon as run
    from bcpctl import session

    consortium, config_dir = session.config(config_path)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_signal: stop.set())
    report = run(consortium, config_dir, system_id, Path(pg_data), Path(spool), stop=stop, interval=interval_ms / 1000)

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("{system}: {archived} segments archived, {failed} failed pushes left to PostgreSQL").format(**d),
            markup=False,
        )

    output.current().result(vars(report), render)


@wal.command("get")
@click.argument("name", metavar="NAME")
@click.argument("path", metavar="PATH", type=click.Path(dir_okay=False))
@_system_option
@click.option("--site", default=None, help="Read the archive of this site (default: the site bcpctl runs at).")
@click.option(
    "--prefetch",
    "prefetch_ahead",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="Also fetch the next N archived segments into --spool (one repository unlock for N+1 gets).",
)
@click.option(
    "--spool",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory of prefetched segments (a later get takes its file from there).",
)
@click.option(
    "--refuse-tablespaces-from",
    "refuse_from",
    metavar="LSN",
    default=None,
    help="As a restore's restore_command: exit 1, leaving NAME.refused in --spool, when the segment "
    "creates a tablespace at or after LSN (replay would write outside the restore target).",
)
@config_option()
@common_options
def wal_get(
    name: str,
    path: str,
    system_id: str,
    site: str | None,
    prefetch_ahead: int,
    spool: str | None,
    refuse_from: str | None,
    config_path: str,
) -> None:
    """Write archived WAL file NAME to PATH (restore_command = 'bcpctl wal get %f %p --system …').

    The file is authenticated and its SHA-256 checked before it is written; exit 1 when the
    archive does not hold it (what PostgreSQL expects at the end of the archive).
    """
    from backup.walseq import parse_lsn
    from backup.walspool import from_spool

    spool_dir = _spool_dir("--prefetch", prefetch_ahead, spool, "where the prefetched segments wait")
    if refuse_from is not None:
        _spool_dir("--refuse-tablespaces-from", 1, spool, "where a refused segment is marked")
    since = parse_lsn(refuse_from) if refuse_from is not None else None
    found = from_spool(system_id, name, Path(path), spool_dir) if spool_dir else None
    if found is None:
        from backup.waljobs import wal_get as get
        from bcpctl import session

        consortium, config_dir = session.config(config_path)
        found = get(
            consortium,
            config_dir,
            system_id,
            name,
            Path(path),
            site,
            spool=spool_dir,
            prefetch_ahead=prefetch_ahead,
            refuse_tablespaces_from=since,
        )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("{name} of {system}: {size} bytes written").format(name=d["name"], system=d["system"], size=d["size"]),
            markup=False,
        )

    output.current().result(vars(found), render)


def _spool_dir(option: str, count: int, spool: str | None, what: str) -> Path | None:
    """The spool directory, refused before the configuration is read when ``option`` asks for
    segments beyond the one PostgreSQL named and there is nowhere to keep them."""
    if count and spool is None:
        raise UsageError(N_("{option} needs --spool DIR ({what})"), option=option, what=what)
    return Path(spool) if spool else None


COMMANDS = [wal]
