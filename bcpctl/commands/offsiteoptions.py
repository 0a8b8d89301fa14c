"""The options ``replicate``, ``verify-offsite`` and ``manifest show`` share: how to reach and trust an offsite copy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dc.errors import N_, UsageError

if TYPE_CHECKING:
    from datetime import timedelta

KNOWN_HOSTS = click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False),
    default=None,
    help="known_hosts file pinning SFTP host keys (default: $BCPCTL_KNOWN_HOSTS, ~/.ssh/known_hosts).",
)
MANIFEST_KEY = click.option(
    "--manifest-key", default=None, metavar="HEX", help="Pinned Ed25519 public key of the repository's manifest."
)
JOBS = click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Parallel transfers.")


def parse_delete_delay(text: str | None) -> timedelta | None:
    from datetime import timedelta

    from dc.duration import parse_duration

    if not text:
        return None
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise UsageError(N_("--delete-delay: {exc}"), exc=exc) from None
