"""``web``: serve the partner portal and operator dashboard; manage operator accounts and partner tokens."""

from __future__ import annotations

import getpass
import sys
from contextlib import closing
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.tables import Table
from dc.errors import N_, UsageError

PASSWORD_ENV = "BCPCTL_WEB_PASSWORD"


def _actor() -> str:
    from dc.osuser import os_user

    return f"cli:{os_user()}"


def _state(config_path: str) -> Any:
    from dc.config import load_config
    from dc.state import open_state

    return open_state(load_config(config_path)[0].control_db)


@click.group("web", invoke_without_command=True)
@click.option(
    "--config",
    "config_path",
    envvar="BCPCTL_CONFIG",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The consortium configuration (bcpctl.yaml).",
)
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT", help="Where to serve HTTP.")
@common_options
@click.pass_context
def web(ctx: click.Context, config_path: str | None, listen: str) -> None:
    """Serve the partner portal and the operator dashboard (also mounted by `bcpctl serve`).

    Without a subcommand: run the web surface alone with uvicorn until SIGINT/SIGTERM.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not config_path:
        raise UsageError(N_("--config is required to serve the web surface"))
    from bcpctl import server as http
    from bcpctl.web.app import create_app
    from bcpctl.web.context import WebContext

    host, port = http.parse_listen(listen)
    app = create_app(WebContext.load(config_path))
    with closing(http.bind(host, port)) as sock:
        click.echo(_("bcpctl web: serving http://{sock}/ (Ctrl-C stops)").format(sock=http.address(sock)), err=True)
        http.run(http.server(app), sock)


@web.group("account")
def account() -> None:
    """Operator accounts (roles: operator, approver, auditor)."""


def _password(password_file: str | None, no_password: bool) -> str | None:
    from dc.secrets import read_secret_file, secret_from_env

    if no_password:
        return None
    if password_file:
        return read_secret_file(password_file, "password")
    if value := secret_from_env(PASSWORD_ENV, "password"):
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat: "):
            raise UsageError(N_("the passwords differ"))
        return first
    raise UsageError(
        N_("no password: give --password-file, set ${PASSWORD_ENV}, or --no-password for proxy-only accounts"),
        PASSWORD_ENV=PASSWORD_ENV,
    )


@account.command("add")
@click.argument("name")
@config_option()
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(["operator", "approver", "auditor"]))
@click.option(
    "--password-file", type=click.Path(dir_okay=False), default=None, help=f"Else ${PASSWORD_ENV} or a prompt."
)
@click.option("--no-password", is_flag=True, help="Only log in through the authenticating reverse proxy.")
@common_options
def account_add(
    name: str, config_path: str, roles: tuple[str, ...], password_file: str | None, no_password: bool
) -> None:
    """Create an account; an approver's NAME must match exports.tenants.<t>.approvers to decide requests."""
    from dc.accounts import add_account
    from dc.clock import utcnow

    created = add_account(
        _state(config_path), name, roles, _password(password_file, no_password), actor=_actor(), now=utcnow()
    )
    output.current().result(
        created,
        lambda c, d: c.print(_("account {name} created ({roles})").format(name=d["name"], roles=", ".join(d["roles"]))),
    )


@account.command("list")
@config_option()
@common_options
def account_list(config_path: str) -> None:
    """List accounts and their roles."""
    from dc.accounts import list_accounts

    def render(console: Console, rows: list[dict[str, Any]]) -> None:
        table = Table(_("name"), _("roles"), _("password"), _("disabled"), _("created"))
        for r in rows:
            table.add_row(
                r["name"],
                ", ".join(r["roles"]),
                _("yes") if r["has_password"] else _("proxy only"),
                _("yes") if r["disabled"] else "",
                output.jst(r["created_at"]),
            )
        console.print(table)

    output.current().result(list_accounts(_state(config_path)), render)


@account.command("disable")
@click.argument("name")
@config_option()
@common_options
def account_disable(name: str, config_path: str) -> None:
    """Disable an account (its sessions stop working at once)."""
    from dc.accounts import disable_account

    disable_account(_state(config_path), name, actor=_actor())
    output.current().result(
        {"name": name, "disabled": True}, lambda c, d: c.print(_("account {name} disabled").format(name=d["name"]))
    )


@web.group("token")
def token() -> None:
    """Partner tokens for the portal and for scripts that cannot sign."""


@token.command("issue")
@click.argument("partner")
@config_option()
@click.option("--label", default="", help="What the token is for (shown in lists and the audit log).")
@common_options
def token_issue(partner: str, config_path: str, label: str) -> None:
    """Issue a token for PARTNER; it is printed once and only its SHA-256 is stored."""
    from bcpctl.web.settings import load_web_settings
    from dc.clock import utcnow
    from dc.config import load_config
    from dc.state import open_state
    from victim_support.tokens import issue_token

    config, resolved = load_config(config_path)
    lifetime = load_web_settings(config, str(resolved)).token_lifetime
    issued = issue_token(
        open_state(config.control_db), config, partner, label=label, issued_by=_actor(), lifetime=lifetime, now=utcnow()
    )
    data = {**vars(issued.info), "token": issued.secret}
    output.current().result(
        data,
        lambda c, d: c.print(
            _("{token}\n(token {id} for {partner}, expires {expires_at})").format(
                token=d["token"], id=d["id"], partner=d["partner"], expires_at=output.jst(d["expires_at"])
            )
        ),
    )


@token.command("list")
@config_option()
@common_options
def token_list(config_path: str) -> None:
    """List issued tokens (never the tokens themselves)."""
    from victim_support.tokens import list_tokens

    def render(console: Console, rows: list[dict[str, Any]]) -> None:
        table = Table(_("id"), _("partner"), _("label"), _("issued by"), _("expires"), _("revoked"))
        for r in rows:
            table.add_row(
                r["id"],
                r["partner"],
                r["label"],
                r["issued_by"],
                output.jst(r["expires_at"]),
                output.jst(r["revoked_at"]) if r["revoked_at"] else "",
            )
        console.print(table)

    output.current().result(list_tokens(_state(config_path)), render)


@token.command("revoke")
@click.argument("token_id")
@config_option()
@common_options
def token_revoke(token_id: str, config_path: str) -> None:
    """Revoke a token by its id."""
    from dc.clock import utcnow
    from victim_support.tokens import revoke_token

    revoked = revoke_token(_state(config_path), token_id, actor=_actor(), now=utcnow())
    output.current().result(
        revoked, lambda c, d: c.print(_("token {id} of {partner} revoked").format(id=d["id"], partner=d["partner"]))
    )


COMMANDS = [web]
