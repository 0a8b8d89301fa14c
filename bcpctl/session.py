"""Turning command-line options into an open repository or a loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backup.escrow import credentials
from backup.repository import Repository
from bcpctl import output
from replication.url import open_backend

if TYPE_CHECKING:  # pydantic models cost ~0.2 s to build; only config-driven commands pay it
    from dc.config import Consortium


@contextmanager
def repository(
    repo_url: str, password_file: str | None, *, escrow: Sequence[str] = (), sync: bool = True
) -> Iterator[Repository]:
    """The one way commands open a repository: backend, passphrase or escrow shares, keys, index cache."""
    unlock = credentials(password_file, escrow)  # refuses shares and a password file together, before any I/O
    with unlock.open(open_backend(repo_url), sync=sync) as repo:
        report_skipped_keys(repo)
        yield repo


def report_skipped_keys(repo: Repository) -> None:
    """Name every object under keys/ that unlocking passed over (DESIGN: key slots are independent)."""
    if click.get_current_context(silent=True) is None:
        return
    out = output.current()
    for problem in repo.key_problems:
        where = f"key slot {problem.name}" if problem.name else "keys/"
        out.warn(f"{where} skipped: {problem.problem}")


def config(path: str | None) -> tuple[Consortium, Path]:
    """The configuration and the directory its relative paths are resolved against."""
    from dc.config import load_config

    consortium, resolved = load_config(path)
    return consortium, resolved.parent
