"""``repo init``, ``key add|list|remove`` and ``snapshots``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output, session
from bcpctl.i18n import _, shown
from bcpctl.options import as_of_option, common_options, new_repo_options, repo_options
from bcpctl.statuslabels import source_text, status_text
from dc.errors import N_

if TYPE_CHECKING:  # rich is slow to import; only a terminal needs it
    from datetime import datetime

    from rich.console import Console


@click.group()
def repo() -> None:
    """Create and inspect repositories."""


@repo.command("init")
@click.option(
    "--manifest-format",
    type=click.Choice(["1", "2"]),
    default="2",
    show_default=True,
    help="2: the signed manifest is a chain of links, each signing what changed (cost independent of "
    "history). 1: one manifest restating everything at each signature, for offsites that still run a "
    "bcpctl older than format 2 (upgrade later with 'manifest sign --chain').",
)
@new_repo_options
@common_options
def repo_init(manifest_format: str, repo_url: str, password_file: str | None) -> None:
    """Create a new encrypted repository at --repo with a first key slot."""
    from backup.opening import init_repository
    from dc.secrets import read_password
    from storage.url import open_backend

    backend = open_backend(repo_url, create=True)
    config = init_repository(backend, read_password(file=password_file), manifest_format=int(manifest_format))
    data = {
        "repository": backend.url,
        "id": config.id,
        "created": config.created,
        "chunker": vars(config.chunker),
        "pack_size": config.pack_size,
        "manifest_format": int(manifest_format),
    }
    output.current().result(
        data,
        lambda c, d: c.print(
            _("created repository {id} at {repository}").format(id=d["id"][:8], repository=d["repository"])
        ),
    )


@click.group()
def key() -> None:
    """Manage key slots: each operator (or escrow) unlocks the same master key."""


@key.command("list")
@repo_options
@common_options
def key_list(repo_url: str, password_file: str | None, escrow: tuple[str, ...]) -> None:
    """List the key slots of a repository, and every damaged or stray object under keys/.

    A damaged object opens nothing and locks nobody out; remove it with `key remove NAME`.
    "unsigned": a slot the signed manifest does not name — planted, or added before manifests
    were kept; unlocking tries it only after the signed ones (`key remove --unsigned`).
    """
    from backup.keyslots import slot_rows

    with session.repository(repo_url, password_file, escrow=escrow, sync=False) as r:
        rows = slot_rows(r)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        from bcpctl.tables import Table

        table = Table("", _("slot"), _("status"), _("kind"), _("label"), _("host"), _("created"))
        for row in data:
            status = (
                (_("ok") if row["signed"] else _("ok, unsigned"))
                if row["status"] == "ok"
                else status_text(row["status"])
            )
            table.add_row(
                "*" if row["current"] else "",
                row["id"],
                status if row["status"] == "ok" else _("damaged: {problem}").format(problem=shown(row["problem"])),
                status_text(row["kind"]),
                row["label"],
                row["host"],
                output.jst(row["created"]),
            )
        console.print(table)

    output.current().result(rows, render)


@key.command("add")
@repo_options
@click.option(
    "--new-password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the new passphrase from this file instead of $BCPCTL_NEW_PASSWORD.",
)
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Instead of a passphrase, create a key file (32 random bytes, mode 0600) at this new path "
    "for a database host's wal push/get (secrets.key_file).",
)
@click.option("--label", default="", help="Who or what this slot is for.")
@common_options
def key_add(
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
    new_password_file: str | None,
    new_key_file: str | None,
    label: str,
) -> None:
    """Add a key slot for a new passphrase (unlock with an existing one).

    With --escrow, K custodians' shares unlock it instead: the staff-loss path to a new passphrase.
    With --new-key-file, the slot is for a new key file: a random 256-bit key that a database
    host's wal push/get unlock with without the passphrase's Argon2id cost; it is as secret as
    the passphrase (it opens the repository) and refused when others can read it.
    """
    from pathlib import Path

    from backup.keyfile import add_key_file
    from backup.keyslots import add_passphrase_slot
    from dc.errors import UsageError
    from dc.secrets import read_password

    if new_key_file and new_password_file:
        raise UsageError(_("give --new-key-file or --new-password-file, not both"))
    new = None
    if not new_key_file:
        new = read_password(file=new_password_file, env="BCPCTL_NEW_PASSWORD", prompt="New passphrase: ")
    with session.repository(repo_url, password_file, escrow=escrow, sync=False) as r:
        if new is None:
            slot_id = add_key_file(r, Path(new_key_file or ""), label=label)
        else:
            slot_id = add_passphrase_slot(r, new, label=label)
    output.current().result(
        {"added": slot_id}, lambda c, d: c.print(_("added key slot {added}").format(added=d["added"]))
    )


@key.command("remove")
@click.argument("slot", required=False, default=None)
@click.option("--unsigned", is_flag=True, help="Remove every slot the signed manifest does not name (planted ones).")
@repo_options
@common_options
def key_remove(
    slot: str | None, unsigned: bool, repo_url: str, password_file: str | None, escrow: tuple[str, ...]
) -> None:
    """Remove a key slot, or a damaged or stray object under keys/, by the name `key list` shows.

    Never the slot in use, never the last passphrase slot. With --unsigned instead of a name:
    every slot the manifest, verified with the repository's own key, does not sign.
    """
    from backup.keyslots import remove_slot, remove_unsigned
    from dc.errors import UsageError

    if (slot is None) == (not unsigned):
        raise UsageError(N_("name one key slot to remove, or give --unsigned"))
    with session.repository(repo_url, password_file, escrow=escrow, sync=False) as r:
        removed = remove_unsigned(r) if unsigned else [remove_slot(r, slot or "")]
    data = {"removed": removed[0] if slot else removed}
    output.current().result(
        data, lambda c, d: c.print(_("removed key slot(s) {removed}").format(removed=d["removed"] or _("none")))
    )


@click.command("snapshots")
@repo_options
@click.option("--system", default=None, help="Only snapshots of this system.")
@as_of_option
@common_options
def snapshots(
    repo_url: str, password_file: str | None, escrow: tuple[str, ...], system: str | None, as_of: datetime | None
) -> None:
    """List snapshots, oldest first."""
    from backup.snapshot import list_snapshots

    with session.repository(repo_url, password_file, escrow=escrow, sync=False, read_only=True, as_of=as_of) as r:
        found = list_snapshots(r, system=system)
    rows = [
        {
            "id": s.id,
            "short_id": s.short_id,
            "time": s.time.isoformat(),
            "system": s.system,
            "tenant": s.tenant,
            "source": f"{s.source_kind}:{s.source_spec}",
            "tags": s.tags,
            "parent": s.parent,
            "hostname": s.hostname,
            "summary": s.summary,
            "tables": s.verify.get("tables", {}),
        }
        for s in found
    ]

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        from bcpctl.tables import Table

        table = Table(_("id"), _("time"), _("system"), _("tenant"), _("source"), _("files"), _("size"), _("added"))
        for row in data:
            summary = row["summary"]
            files = summary.get("files_new", 0) + summary.get("files_changed", 0) + summary.get("files_unmodified", 0)
            table.add_row(
                row["short_id"],
                output.jst(row["time"]),
                row["system"] or "",
                row["tenant"] or "",
                source_text(*row["source"].partition(":")[::2]),
                str(files),
                human_bytes(summary.get("bytes_total", 0)),
                human_bytes(summary.get("bytes_added", 0)),
            )
        console.print(table)
        console.print(_("{count} snapshot(s)").format(count=len(data)))

    output.current().result(rows, render)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


COMMANDS = [repo, key, snapshots]
