"""``db upgrade`` and ``db current``: the control database's schema version."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.statuslabels import status_text
from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

F = TypeVar("F", bound=Callable[..., Any])


@click.group("db")
def db() -> None:
    """The control database's schema, versioned by the migrations shipped with bcpctl.

    Every command that opens the control database needs its schema at this bcpctl's newest
    revision. Only `bcpctl db upgrade` (and `bcpctl demo`'s set-up) creates a control database:
    any other command, `serve` included, stops with exit 2 naming the database when it does
    not exist or has no tables, because an empty control state would be believed (after a
    failover, a run without $BCPCTL_SITE would report "never failed over" from the lost
    primary's path). An existing one of an older bcpctl is never upgraded behind your back:
    the command stops with exit 2 and "run bcpctl db upgrade", because an upgrade converts
    stored data and must not run under a scheduler of the old version. `bcpctl serve`
    upgrades at its start, logged.
    """


def _database_options(fn: F) -> F:
    fn = click.option(
        "--control-db",
        "control_db",
        default=None,
        metavar="URL",
        help="The control database (sqlite:///PATH or postgresql://USER@HOST/DBNAME); "
        "default: the configuration's control_db, else $BCPCTL_CONTROL_DB, else the SQLite file "
        "under $XDG_STATE_HOME/bcpctl.",
    )(fn)
    return config_option(required=False)(fn)


def _connect(config_path: str | None, control_db: str | None, *, create: bool = False) -> Engine:
    from dc.config import load_config
    from dc.state import connect

    if config_path and control_db:
        raise UsageError(N_("give --config or --control-db, not both"))
    return connect(control_db or (load_config(config_path)[0].control_db if config_path else None), create=create)


@db.command("upgrade")
@_database_options
@common_options
def db_upgrade(config_path: str | None, control_db: str | None) -> None:
    """Create the control database, or apply its pending migrations, all in one transaction.

    The one command that begins a new control state: run it once per site at installation.
    A database of the release before migrations (no schema version) is recognised by its
    tables and recorded as revision 0001 first; tables that are not that release's are
    refused (exit 2). Refused with exit 1, nothing changed, while a `bcpctl serve` of another
    version holds the scheduler lease: stop it first. A database that a newer bcpctl upgraded
    is refused (exit 2). A stored time that does not parse stops the upgrade (exit 1), naming
    its row. Each applied migration is logged on stderr.
    """
    from monitoring import logs
    from monitoring.upgrade import upgrade_control_db

    logs.configure()
    engine = _connect(config_path, control_db, create=True)
    try:
        result = upgrade_control_db(engine)
    finally:
        engine.dispose()

    def render(console: Console, d: dict[str, Any]) -> None:
        if not d["applied"]:
            console.print(
                _("{database}: at revision {after}, nothing to upgrade").format(
                    database=d["database"], after=d["after"]
                ),
                markup=False,
            )
            return
        before = d["before"] or (_("the previous release (no version)") if d["adopted"] else _("empty"))
        console.print(
            _("{database}: upgraded from {before} to {after}").format(
                database=d["database"], before=before, after=d["after"]
            ),
            markup=False,
        )
        for migration in d["applied"]:
            console.print(f"  {migration['revision']}  {_(migration['title'])}", markup=False)

    output.current().result(result, render)


@db.command("current")
@_database_options
@common_options
def db_current(config_path: str | None, control_db: str | None) -> None:
    """Show the control database's schema revision, this bcpctl's newest, and what an upgrade would apply.

    A SQLite database that does not exist is named (exit 2), never created.
    """
    from dc.schema import status

    engine = _connect(config_path, control_db)
    try:
        found = status(engine)
    finally:
        engine.dispose()

    def render(console: Console, d: dict[str, Any]) -> None:
        revision = d["revision"] or {
            "empty": _("none (empty)"),
            "unversioned": _("the previous release (no version)"),
        }.get(d["state"], _("none"))
        console.print(
            _("{database}: revision {revision}, head {head} ({state})").format(
                database=d["database"], revision=revision, head=d["head"], state=status_text(d["state"])
            ),
            markup=False,
        )
        for migration in d["pending"]:
            console.print(
                "  "
                + _("pending {revision}  {title}").format(revision=migration["revision"], title=_(migration["title"])),
                markup=False,
            )
        if d["state"] in ("behind", "unversioned"):
            console.print(_("run bcpctl db upgrade"), markup=False)

    output.current().result(found, render)


COMMANDS = [db]
