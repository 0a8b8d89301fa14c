"""Options shared by every command: ``--json`` and ``--debug`` on each, repository options."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bcpctl.i18n import N_, _
from bcpctl.params import PointInTime, SnapshotPattern
from dc.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "BCPCTL_DEBUG"


def _set_meta(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value:
            ctx.meta[key] = value
            if key == "bcpctl.debug":
                os.environ[DEBUG_ENV] = "1"

    return callback


def common_options(fn: F) -> F:
    """``--json`` and ``--debug`` on a command, stored in the context (not passed as args)."""
    fn = click.option(
        "--json",
        "json_mode",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_meta("bcpctl.json"),
        help=N_("Print one JSON document on stdout for scripts."),
    )(fn)
    fn = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_meta("bcpctl.debug"),
        help=N_("Show a traceback on errors."),
    )(fn)
    return fn


def key_value_pairs(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """Click callback for a repeatable ``K=V`` option (``--tag``, ``-e``): a dict, a later key wins.

    Runs while the command line is parsed, so a bad pair stops the command before it touches
    anything; the value may itself contain ``=``.
    """
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            name = max(getattr(param, "opts", None) or [param.name or "value"], key=len)
            raise UsageError(_("invalid {name} '{item}': use KEY=VALUE").format(name=name, item=item))
        pairs[key] = value
    return pairs


def escrow_option(fn: F) -> F:
    """``--escrow FILE`` (repeatable): unlock from K escrow shares, no passphrase.

    The staff-loss path (DESIGN "failover/": only escrowed keys and the offsite copy are
    left): K custodians' SLIP-39 shares open the repository; the passphrase is never read.
    """
    return click.option(
        "--escrow",
        multiple=True,
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help=N_("Escrow share file (repeat K times); no passphrase is read."),
    )(fn)


def repo_options(fn: F) -> F:
    """``--repo``, ``--password-file`` and ``--escrow``: how a command reaches and unlocks an existing repository."""
    return new_repo_options(escrow_option(fn))


def new_repo_options(fn: F) -> F:
    """``--repo`` and ``--password-file``: where ``repo init`` creates a repository and its first passphrase slot."""
    fn = click.option(
        "--password-file",
        type=click.Path(dir_okay=False),
        default=None,
        help=N_("Read the passphrase from this file instead of $BCPCTL_PASSWORD."),
    )(fn)
    return repo_url_option(fn)


def repo_url_option(fn: F) -> F:
    """``--repo``: where the repository is, for commands that never unlock it (``unlock``)."""
    return click.option(
        "--repo",
        "repo_url",
        envvar="BCPCTL_REPO",
        required=True,
        metavar="URL",
        help=N_("Repository: a path, file://, s3://BUCKET/PREFIX?endpoint=… or sftp://USER@HOST:PORT/PATH."),
    )(fn)


def config_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "--config",
        "config_path",
        envvar="BCPCTL_CONFIG",
        required=required,
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help=N_("The consortium configuration (bcpctl.yaml)."),
    )


def as_of_option(fn: F) -> F:
    """``--as-of TIME``: read the repository as the storage's version history held it at TIME."""
    return click.option(
        "--as-of",
        "as_of",
        default=None,
        metavar="TIME",
        type=PointInTime(),
        help="Read the repository as it was at TIME (ISO 8601 with offset) from the storage's version "
        "history (S3 with versioning or Object Lock); later objects do not exist in that view.",
    )(fn)


def pattern_option(flag: str, help: str) -> Callable[[F], F]:
    """A repeatable path pattern (docs/restore.md, Patterns), parsed as the snapshot's paths are."""
    dest = flag.removeprefix("--") + "s"
    return click.option(flag, dest, multiple=True, type=SnapshotPattern(), metavar="PATTERN", help=help)
