"""``manifest sign|show``: the signed manifest that lets an offsite verify the snapshot set without keys."""

from __future__ import annotations

import click

from bcpctl import output
from bcpctl.commands.offsiteoptions import KNOWN_HOSTS, MANIFEST_KEY
from bcpctl.i18n import _
from bcpctl.options import common_options, repo_options


@click.group()
def manifest() -> None:
    """The signed repository manifest that lets the offsite verify the snapshot set without keys."""


@manifest.command("sign")
@click.option(
    "--chain",
    is_flag=True,
    help="Upgrade to manifest format 2 (a signed chain of deltas; every verifier must read it first). "
    "A repository already in format 2 gets a full checkpoint.",
)
@repo_options
@common_options
def manifest_sign(chain: bool, repo_url: str, password_file: str | None, escrow: tuple[str, ...]) -> None:
    """Sign the current snapshot set (needs the passphrase; run at the primary)."""
    from backup.manifest import sign_manifest
    from bcpctl import session

    with session.repository(repo_url, password_file, escrow=escrow) as repo:
        signed = sign_manifest(repo, chain=True if chain else None, checkpoint=True)
    data = {
        "format": 2 if signed.position else 1,
        "sequence": signed.sequence,
        "time": signed.time,
        "public_key": signed.public_key,
        "snapshots": len(signed.snapshots),
        "indexes": len(signed.indexes),
        "packs": len(signed.packs),
    }
    output.current().result(
        data,
        lambda c, d: c.print(
            _("signed manifest {sequence}: {snapshots} snapshots, {packs} packs; public key {public_key}").format(
                sequence=d["sequence"], snapshots=d["snapshots"], packs=d["packs"], public_key=d["public_key"]
            )
        ),
    )


@manifest.command("show")
@click.option("--repo", "repo_url", envvar="BCPCTL_REPO", required=True, metavar="URL", help="Repository.")
@MANIFEST_KEY
@KNOWN_HOSTS
@common_options
def manifest_show(repo_url: str, manifest_key: str | None, known_hosts: str | None) -> None:
    """Show and verify a repository's signed manifest (no passphrase needed)."""
    from replication.jobs import Endpoint, show_manifest

    found = show_manifest(Endpoint(repo_url, known_hosts), pinned_key=manifest_key)
    output.current().result(
        found,
        lambda c, d: c.print(
            _(
                "manifest {sequence} of {time}: {snapshots} snapshots, {indexes} indexes, {packs} packs; key "
                "{public_key}"
            ).format(
                sequence=d["sequence"],
                time=output.jst(d["time"]),
                snapshots=len(d["snapshots"]),
                indexes=len(d["indexes"]),
                packs=len(d["packs"]),
                public_key=d["public_key"],
            )
        ),
    )


COMMANDS = [manifest]
