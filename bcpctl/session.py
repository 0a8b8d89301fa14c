"""Turning command-line options into an open repository or a loaded configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from backup.repository import Repository, open_repository
from dc.secrets import read_password
from replication.url import open_backend

if TYPE_CHECKING:  # pydantic models cost ~0.2 s to build; only config-driven commands pay it
    from dc.config import Consortium


@contextmanager
def repository(repo_url: str, password_file: str | None, *, sync: bool = True) -> Iterator[Repository]:
    """The one way commands open a repository: backend, passphrase, keys, index cache."""
    backend = open_backend(repo_url)
    with open_repository(backend, read_password(file=password_file), sync=sync) as repo:
        yield repo


def config(path: str | None) -> tuple[Consortium, Path]:
    """The configuration and the directory its relative paths are resolved against."""
    from dc.config import load_config

    consortium, resolved = load_config(path)
    return consortium, resolved.parent
