"""Turning command-line options into an open repository or a loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from backup.escrow import credentials
from backup.repository import Repository
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
        yield repo


def config(path: str | None) -> tuple[Consortium, Path]:
    """The configuration and the directory its relative paths are resolved against."""
    from dc.config import load_config

    consortium, resolved = load_config(path)
    return consortium, resolved.parent
