"""``key escrow split|open``: K-of-N custodian shares of a repository key slot (SLIP-39).

These are subcommands of ``bcpctl key`` (defined in :mod:`bcpctl.commands.repo`); importing
this module attaches them there, so it adds no top-level command of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output, session
from bcpctl.commands.repo import key
from bcpctl.i18n import _
from bcpctl.options import common_options, repo_options
from dc.errors import N_, UsageError


@key.group("escrow")
def escrow() -> None:
    """Escrow: split a key slot into custodian shares; open a repository from K of them."""


@escrow.command("split")
@repo_options
@click.option("--shares", type=click.IntRange(2, 16), required=True, help="N: how many custodians get a share.")
@click.option("--threshold", type=click.IntRange(2, 16), required=True, help="K: how many shares open the repository.")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Write share-I-of-N.txt files here (0600)."
)
@click.option("--label", default="escrow", help="Label of the new key slot.")
@click.option(
    "--custodian",
    "custodians",
    multiple=True,
    metavar="NAME",
    help="Custodian printed on a sheet (repeat once per share, in share order).",
)
@click.option("--contact", default="", metavar="TEXT", help="Who a custodian calls, printed on every sheet.")
@click.option("--no-pdf", is_flag=True, help="Write the HTML sheets only (no headless Chromium print).")
@common_options
def escrow_split(
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    shares: int,
    threshold: int,
    out_dir: str | None,
    label: str,
    custodians: tuple[str, ...],
    contact: str,
    no_pdf: bool,
) -> None:
    """Add an escrow key slot and split its secret into --shares SLIP-39 shares, --threshold to open.

    With --out, each custodian gets share-I-of-N.txt (for --escrow), and a printable sheet in
    Japanese (share-I-of-N.html, and .pdf printed by headless Chromium when one is installed).
    Without --out the shares are printed only to an interactive terminal, for writing down;
    they are never written to a pipe or a log.
    """
    from backup.escrow import prepare_share_dir, share_sheet, split_key, write_printable_sheets, write_share_sheets
    from dc.clock import utcnow

    if threshold > shares:
        raise UsageError(
            N_("--threshold {threshold} is more than --shares {shares}"), threshold=threshold, shares=shares
        )
    if custodians and len(custodians) != shares:
        raise UsageError(
            N_("{n_custodians} --custodian names for --shares {shares}; give one per share"),
            n_custodians=len(custodians),
            shares=shares,
        )
    out = output.current()
    if out_dir is None and (out.json_mode or not sys.stdout.isatty()):
        raise UsageError(N_("shares are secrets: give --out DIR (they are printed only to an interactive terminal)"))
    if out_dir is not None:
        prepare_share_dir(Path(out_dir))
    with session.repository(repo_url, password_file, escrow=escrow, sync=False) as repo:
        split = split_key(repo, shares=shares, threshold=threshold, label=label)
        url = repo.backend.url
    files: list[str] = []
    pdf_unavailable = None
    if out_dir is not None:
        files = write_share_sheets(split, Path(out_dir), url, custodians)
        printable = write_printable_sheets(
            split, Path(out_dir), url, made_at=utcnow(), custodians=custodians, contact=contact, pdf=not no_pdf
        )
        files, pdf_unavailable = files + printable.files, printable.pdf_unavailable
    else:
        for number in range(1, shares + 1):
            click.echo(share_sheet(split, number, url, custodians[number - 1] if custodians else ""))
    data = {
        "slot": split.slot_id,
        "repository": split.repository_id,
        "shares": shares,
        "threshold": threshold,
        "files": files,
        "pdf_unavailable": pdf_unavailable,
    }

    def render(c: Console, d: dict[str, Any]) -> None:
        c.print(
            _("added escrow key slot {slot}: {threshold} of {shares} shares open it").format(
                slot=d["slot"], threshold=d["threshold"], shares=d["shares"]
            )
        )
        for name in d["files"]:
            c.print(f"  {name}")
        if d["pdf_unavailable"] and out_dir is not None:
            c.print(
                "  "
                + _("no PDF sheets: {pdf_unavailable}; print the .html sheets from a browser").format(
                    pdf_unavailable=d["pdf_unavailable"]
                )
            )

    out.result(data, render)


@escrow.command("open")
@click.option("--repo", "repo_url", envvar="BCPCTL_REPO", required=True, metavar="URL", help="Repository.")
@click.option(
    "--escrow",
    "escrow_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Share file (repeat K times).",
)
@common_options
def escrow_open(repo_url: str, escrow_files: tuple[str, ...]) -> None:
    """Prove that these shares open the repository (no passphrase is read)."""
    from backup.escrow import open_repository_with_shares
    from backup.snapshot import snapshot_ids
    from storage.url import open_backend

    with open_repository_with_shares(open_backend(repo_url), escrow_files, sync=False) as repo:
        data = {"repository": repo.config.id, "slot": repo.slot_id, "snapshots": len(snapshot_ids(repo))}
    output.current().result(
        data,
        lambda c, d: c.print(
            _("opened repository {repository} with escrow slot {slot}").format(
                repository=d["repository"][:8], slot=d["slot"]
            )
        ),
    )


COMMANDS: list[click.Command] = []
