"""Turning command-line options into an open repository or a loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backup.escrow import credentials
from backup.repository import Repository
from bcpctl import output
from bcpctl.i18n import _
from storage.url import open_backend

if TYPE_CHECKING:  # pydantic models are slow to build; only config-driven commands pay it
    from dc.config import Consortium
    from replication.history import HistoryView


@contextmanager
def repository(
    repo_url: str,
    password_file: str | None,
    *,
    escrow: Sequence[str] = (),
    sync: bool = True,
    read_only: bool = False,
    as_of: datetime | None = None,
) -> Iterator[Repository]:
    """The one way commands open a repository: backend, passphrase or escrow shares, keys, index cache.

    Commands that only read (``read_only``: restore, snapshots, check) read storage that keeps
    versions through :class:`~replication.history.HistoryView`: an object overwritten or
    deleted after it was written is read from its intact older version, with a warning naming
    it. ``as_of`` reads the whole repository as it was at that time (versioned storage only).
    """
    unlock = credentials(password_file, escrow)  # refuses shares and a password file together, before any I/O
    backend = open_backend(repo_url)
    if not (read_only or as_of is not None):
        with unlock.open(backend, sync=sync) as repo, _reporting_skipped(repo):
            yield repo
        return
    from replication.history import open_history

    try:
        view = open_history(backend, as_of=as_of)
    except BaseException:
        backend.close()
        raise
    if view is None:
        with unlock.open(backend, sync=sync) as repo, _reporting_skipped(repo):
            yield repo
        return
    try:
        # The index is read only after the view trusts the manifest of this repository's own
        # key: a manifest an attacker signed with another key must not decide what is listed.
        with unlock.open(view, sync=False) as repo:
            from backup.manifest import repository_public_key

            view.trust(repository_public_key(repo))
            with _reporting_skipped(repo):
                if sync:
                    repo.sync_index()
                yield repo
    finally:
        _warn(view)


#: warnings beyond this many objects are counted, not listed (an attack may touch every pack)
_WARN_AT_MOST = 20


def _warn(view: HistoryView) -> None:
    from bcpctl import output

    out = output.current()
    for note in view.notes:
        out.warn(note)
    recoveries = sorted(view.recoveries.values(), key=lambda r: r.key)
    for recovery in recoveries[:_WARN_AT_MOST]:
        out.warn(
            _("{key} at {url}: {recovery} and was read instead").format(
                key=recovery.key, url=view.inner.url, recovery=recovery.describe()
            )
        )
    if len(recoveries) > _WARN_AT_MOST:
        out.warn(
            _("… and {more} more object(s) read from an older version").format(more=len(recoveries) - _WARN_AT_MOST)
        )
    if recoveries:
        out.warn(
            _(
                "'bcpctl verify-offsite --repo URL' lists them all; 'bcpctl replicate --repair --to {url}' makes the "
                "intact versions current again"
            ).format(url=view.inner.url)
        )


@contextmanager
def _reporting_skipped(repo: Repository) -> Iterator[None]:
    """Name the key slots unlocking passed over now, and the objects the command passed over at its end."""
    report_skipped_keys(repo)
    try:
        yield
    finally:
        if click.get_current_context(silent=True) is not None:
            for key, why in sorted(repo.skipped_objects.items()):
                output.current().warn(_("{key} skipped: {why}").format(key=key, why=why))


def report_skipped_keys(repo: Repository) -> None:
    """Name every object under keys/ that unlocking passed over (DESIGN: key slots are independent)."""
    if click.get_current_context(silent=True) is None:
        return
    out = output.current()
    for problem in repo.key_problems:
        where = f"key slot {problem.name}" if problem.name else "keys/"
        out.warn(_("{where} skipped: {problem}").format(where=where, problem=problem.problem))


def config(path: str | None) -> tuple[Consortium, Path]:
    """The configuration and the directory its relative paths are resolved against."""
    from dc.config import load_config

    consortium, resolved = load_config(path)
    return consortium, resolved.parent
