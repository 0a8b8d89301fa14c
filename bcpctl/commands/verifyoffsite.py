"""``verify-offsite``: verify a repository without any key (also ``check --integrity-only``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bcpctl import output
from bcpctl.commands.offsiteoptions import JOBS, KNOWN_HOSTS, MANIFEST_KEY, parse_delete_delay
from bcpctl.i18n import _, shown
from bcpctl.options import as_of_option, common_options
from bcpctl.params import DAY, Duration
from dc.errors import ProblemFound

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from rich.console import Console


def _render_integrity(console: Console, data: dict[str, Any]) -> None:
    from bcpctl.commands.repo import human_bytes

    manifest = (
        _("manifest {manifest_sequence} of {manifest_time}, {snapshots_signed} snapshots").format(
            manifest_sequence=data["manifest_sequence"],
            manifest_time=output.jst(data["manifest_time"]),
            snapshots_signed=data["snapshots_signed"],
        )
        + (" " + _("(pinned key)") if data["pinned"] else " " + _("(key not pinned)"))
        if data["manifest_sequence"] is not None
        else _("no valid manifest")
    )
    console.print(
        _("{url}: {objects_checked} objects, {bytes_checked} hashed in {seconds}s; {manifest}").format(
            url=data["url"],
            objects_checked=data["objects_checked"],
            bytes_checked=human_bytes(data["bytes_checked"]),
            seconds=f"{data['seconds']:.1f}",
            manifest=manifest,
        )
    )
    for problem in data["problems"]:
        console.print(f"  {problem['kind']}: {problem['key']}: {shown(problem['detail'])}")
    if data["kept_note"]:
        console.print(f"  {data['kept_note']}")
    for line in data["warnings"]:
        console.print("  " + _("warning: {line}").format(line=shown(line)))
    console.print(
        _("no problems found")
        if data["ok"]
        else _("{problems} problem(s) found").format(problems=len(data["problems"]))
    )


@click.command("verify-offsite")
@click.option("--repo", "repo_url", envvar="BCPCTL_REPO", required=True, metavar="URL", help="Repository to verify.")
@MANIFEST_KEY
@KNOWN_HOSTS
@click.option("--no-read-data", is_flag=True, help="Check presence and sizes only; do not hash object contents.")
@click.option(
    "--delete-delay",
    default=None,
    type=Duration(0, 3650 * DAY, as_text=True),
    metavar="DURATION",
    help="The offsite's delete delay (as given to replicate; default 7d): how long snapshots removed at the "
    "primary stay here.",
)
@JOBS
@as_of_option
@common_options
def verify_offsite(
    repo_url: str,
    manifest_key: str | None,
    known_hosts: str | None,
    no_read_data: bool,
    delete_delay: str | None,
    jobs: int,
    as_of: datetime | None,
) -> None:
    """Verify a repository without any key: hashes, signed manifest, presence of what snapshots need.

    Where the storage keeps versions (S3 with Object Lock) it also names every object whose
    current version was overwritten or deleted while an intact older one remains, and says to
    run 'replicate --repair'. Snapshots the primary removed that the delete delay keeps here
    are reported as such, not as forged.
    """
    integrity_check(
        repo_url,
        manifest_key=manifest_key,
        known_hosts=known_hosts,
        read_data=not no_read_data,
        jobs=jobs,
        delete_delay=parse_delete_delay(delete_delay),
        as_of=as_of,
    )


def integrity_check(
    repo_url: str,
    *,
    manifest_key: str | None,
    known_hosts: str | None,
    read_data: bool,
    jobs: int,
    delete_delay: timedelta | None = None,
    as_of: datetime | None = None,
) -> None:
    """Run and render the keyless verification (also ``check --integrity-only``)."""
    from replication.jobs import Endpoint, verify_at
    from replication.plan import DEFAULT_DELETE_DELAY

    out = output.current()
    with out.progress(_("verifying")) as bar:
        report = verify_at(
            Endpoint(repo_url, known_hosts),
            pinned_key=manifest_key,
            read_data=read_data,
            jobs=jobs,
            progress=bar.advance,
            as_of=as_of,
            delete_delay=DEFAULT_DELETE_DELAY if delete_delay is None else delete_delay,
        )
    out.result(report, _render_integrity)
    if not report.ok:
        raise ProblemFound(report.summary())


COMMANDS = [verify_offsite]
