"""``approver enroll|check``: the officials who approve exports and failovers, and their secrets."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import F, common_options, config_option
from dc.errors import N_


@click.group()
def approver() -> None:
    """Approvers' credentials: each official's own secret, verified on every approval."""


def _secret_file_option(fn: F) -> F:
    return click.option(
        "--secret-file",
        "--approver-secret-file",
        "secret_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="The approver's secret (else $BCPCTL_APPROVER_SECRET); with --generate, a new file to create.",
    )(fn)


@approver.command("enroll")
@config_option()
@click.option("--approver", "name", required=True, help="The approver's name, as the configuration lists it.")
@_secret_file_option
@click.option("--generate", is_flag=True, help="Create --secret-file with a new random secret (mode 0600).")
@common_options
def approver_enroll(config_path: str, name: str, secret_file: str | None, generate: bool) -> None:
    """Print the credential line for approvers: in bcpctl.yaml; the secret stays with the approver.

    The secret is a file (--generate writes one) or a passphrase of at least 12 characters in
    $BCPCTL_APPROVER_SECRET. Only a salted Argon2id-derived public key goes into the
    configuration; the enrolment is recorded in the audit log. A secret already enrolled for
    another approver is refused: the two-person rule needs two secrets.
    """
    from dc.approvers import ApproverAuthFailed, check_name, enroll_approver, read_secret, write_new_secret
    from dc.config import load_config
    from dc.errors import UsageError
    from dc.state import open_state

    config, _dir = load_config(config_path)
    check_name(name)
    if generate:
        if not secret_file:
            raise UsageError(N_("--generate needs --secret-file (where to write the new secret)"))
        secret = write_new_secret(secret_file)
    else:
        try:
            given = read_secret(secret_file)
        except ApproverAuthFailed as exc:
            raise UsageError(exc.template, **exc.params) from None
        if not given:
            raise UsageError(
                N_("no secret: pass --secret-file FILE (add --generate for a new one) or set $BCPCTL_APPROVER_SECRET")
            )
        secret = given
    enrolment = enroll_approver(config.approvers, name, secret, engine=open_state(config.control_db))

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("approver {approver}: credential {credential_id}; add to bcpctl.yaml:").format(
                approver=d["approver"], credential_id=d["credential_id"]
            )
        )
        console.print("approvers:", highlight=False)  # YAML to paste: a key, not a word
        console.print(f'  {d["approver"]}: "{d["credential"]}"', highlight=False, soft_wrap=True)
        if d["replaces"]:
            console.print(
                _("(replaces {replaces}: approvals signed with it stop counting once this is configured)").format(
                    replaces=d["replaces"]
                )
            )

    output.current().result(enrolment, render)


@approver.command("check")
@config_option()
@click.option("--approver", "name", required=True, help="The approver's name, as the configuration lists it.")
@_secret_file_option
@common_options
def approver_check(config_path: str, name: str, secret_file: str | None) -> None:
    """Check that a secret is the approver's configured one (exit 3 if not); records nothing."""
    from dc.approvers import check_approver, read_secret
    from dc.config import load_config

    config, _dir = load_config(config_path)
    credential = check_approver(config.approvers, name, read_secret(secret_file))

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(
            _("the secret is {approver}'s configured credential {credential_id}").format(
                approver=d["approver"], credential_id=d["credential_id"]
            )
        )

    output.current().result({"approver": name, "credential_id": credential}, render)


COMMANDS = [approver]
