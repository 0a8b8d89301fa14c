"""``key escrow split|open``: K-of-N custodian shares of a repository key slot (SLIP-39).

These are subcommands of ``bcpctl key`` (defined in :mod:`bcpctl.commands.repo`); importing
this module attaches them there, so it adds no top-level command of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bcpctl import output, session
from bcpctl.commands.repo import key
from bcpctl.options import common_options, repo_options
from dc.errors import UsageError


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
@common_options
def escrow_split(
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    shares: int,
    threshold: int,
    out_dir: str | None,
    label: str,
) -> None:
    """Add an escrow key slot and split its secret into --shares SLIP-39 shares, --threshold to open.

    Without --out the shares are printed only to an interactive terminal, for writing down;
    they are never written to a pipe or a log.
    """
    from backup.escrow import prepare_share_dir, share_sheet, split_key, write_share_sheets

    if threshold > shares:
        raise UsageError(f"--threshold {threshold} is more than --shares {shares}")
    out = output.current()
    if out_dir is None and (out.json_mode or not sys.stdout.isatty()):
        raise UsageError("shares are secrets: give --out DIR (they are printed only to an interactive terminal)")
    if out_dir is not None:
        prepare_share_dir(Path(out_dir))
    with session.repository(repo_url, password_file, escrow=escrow, sync=False) as repo:
        split = split_key(repo, shares=shares, threshold=threshold, label=label)
        url = repo.backend.url
    if out_dir is not None:
        files = write_share_sheets(split, Path(out_dir), url)
    else:
        files = []
        for number in range(1, shares + 1):
            click.echo(share_sheet(split, number, url))
    data = {
        "slot": split.slot_id,
        "repository": split.repository_id,
        "shares": shares,
        "threshold": threshold,
        "files": files,
    }
    out.result(
        data,
        lambda c, d: c.print(f"added escrow key slot {d['slot']}: {d['threshold']} of {d['shares']} shares open it"),
    )


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
        data, lambda c, d: c.print(f"opened repository {d['repository'][:8]} with escrow slot {d['slot']}")
    )


COMMANDS: list[click.Command] = []
