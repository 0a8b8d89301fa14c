"""``tag``: change a snapshot's tags; the original snapshot stays stored and verifiable."""

from __future__ import annotations

from typing import Any

import click

from bcpctl import output, session
from bcpctl.options import common_options, key_value_pairs, repo_options


@click.command("tag")
@click.argument("snapshot_refs", metavar="SNAPSHOT...", nargs=-1, required=True)
@click.option(
    "--add", "add", multiple=True, metavar="K=V", callback=key_value_pairs, help="Add or change a tag (repeatable)."
)
@click.option("--remove", "remove", multiple=True, metavar="K", help="Remove the tag K (repeatable).")
@click.option(
    "--set",
    "set_to",
    multiple=True,
    metavar="K=V",
    callback=key_value_pairs,
    help="Replace every tag with these (repeatable; alone).",
)
@repo_options
@common_options
def tag(
    snapshot_refs: tuple[str, ...],
    add: dict[str, str],
    remove: tuple[str, ...],
    set_to: dict[str, str],
    repo_url: str,
    password_file: str | None,
    escrow: tuple[str, ...],
) -> None:
    """Change the tags of SNAPSHOTs (id, id prefix, latest or latest:SYSTEM).

    The new tags go into a new snapshot object that supersedes the old one in every
    listing; the old object is never changed (check still verifies it, signatures it
    carries stay valid) and is removed with the new one by forget. bcpctl's own snapshots
    (systems starting with _) are refused, exit 2.
    """
    from backup.snapref import find_snapshot
    from backup.tagging import new_tags, tag_snapshot

    new_tags({}, add=add, remove=remove, set_to=set_to or None)  # a bad combination stops before the repository opens
    results = []
    with session.repository(repo_url, password_file, escrow=escrow) as r:
        for snap in {s.id: s for s in (find_snapshot(r, ref) for ref in snapshot_refs)}.values():
            done = tag_snapshot(r, snap, add=add, remove=remove, set_to=set_to or None)
            results.append(
                {
                    "original": done.original,
                    "snapshot": done.snapshot.id,
                    "changed": done.changed,
                    "tags": done.snapshot.tags,
                }
            )

    def render(console: Any, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            what = f"now {row['snapshot'][:8]}" if row["changed"] else "unchanged"
            tags = ", ".join(f"{k}={v}" for k, v in sorted(row["tags"].items())) or "no tags"
            console.print(f"{row['original'][:8]}: {what} ({tags})", markup=False)

    output.current().result(results, render)


COMMANDS = [tag]
