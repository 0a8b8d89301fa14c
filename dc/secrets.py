"""Reading secrets from where operators keep them: environment variables, files, a TTY prompt.

Secrets never come from command-line arguments (visible in ``ps``) or the configuration file,
and nothing here logs them.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from dc.errors import UsageError

PASSWORD_ENV = "BCPCTL_PASSWORD"


def read_secret_file(path: str | os.PathLike[str], what: str = "secret") -> str:
    """The file's content without its trailing newline; an empty file is refused."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise UsageError(f"{what} file {path} is empty")
    return secret


def read_password(
    *,
    file: str | os.PathLike[str] | None = None,
    env: str = PASSWORD_ENV,
    prompt: str | None = "Repository passphrase: ",
) -> str:
    """A passphrase from ``file``, else ``$env``, else a TTY prompt; never from argv."""
    if file is not None:
        return read_secret_file(file, "password")
    if value := os.environ.get(env):
        return value
    if prompt and sys.stdin.isatty():
        value = getpass.getpass(prompt)
        if value:
            return value
    raise UsageError(f"no passphrase: set {env} or pass --password-file")
