"""The repository passphrase as a configuration says to find it.

Its own small module: ``wal push`` and ``wal get`` run once per WAL file, and importing the
backup job machinery only to read a password file cost each of them about 0.15 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dc.secrets import read_password

if TYPE_CHECKING:
    from dc.config import Consortium


def config_password(config: Consortium, config_dir: Path | None = None, site: str | None = None) -> str:
    """The repository passphrase as the configuration says to find it (``site``'s own file first)."""
    secrets = config.secrets
    own = config.sites[site].password_file if site in config.sites else None
    if own or secrets.password_file:
        path = Path(own or secrets.password_file or "")
        if not path.is_absolute() and config_dir is not None:
            path = config_dir / path
        return read_password(file=path)
    return read_password(env=secrets.password_env)


def config_key_file(config: Consortium, config_dir: Path | None = None, site: str | None = None) -> Path | None:
    """The key file configured for ``site`` (its own first, then ``secrets.key_file``), or None."""
    own = config.sites[site].key_file if site in config.sites else None
    if not (own or config.secrets.key_file):
        return None
    path = Path(own or config.secrets.key_file or "")
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return path
