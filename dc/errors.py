"""The project-wide exception root.

Every package raises subclasses of :class:`BcpError` with a message written for the operator
who reads it on a bad day; the CLI prints that message as one line and exits with the
class's ``exit_code``. Anything that is not a ``BcpError`` is a bug and shows a traceback
with ``--debug``.
"""

from __future__ import annotations

import errno


class BcpError(Exception):
    """An error with a user-facing one-line message and a documented exit code."""

    #: 1: the operation ran and found a problem (damage, failed verification).
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProblemFound(BcpError):
    """The operation completed and found something wrong (exit 1)."""

    exit_code = 1


class UsageError(BcpError):
    """Arguments or input that can never work (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid configuration file (exit 2); the message names file, field and problem."""


class AuthError(BcpError):
    """Wrong passphrase, unknown SSH host key, rejected credentials (exit 3)."""

    exit_code = 3


def unreachable_database(exc: BaseException) -> BcpError | None:
    """SQLAlchemy's OperationalError (server down, refused, wrong file) as the one line to show.

    Told apart without importing SQLAlchemy, which a command that fails early never needs.
    """
    if type(exc).__name__ != "OperationalError" or not type(exc).__module__.startswith("sqlalchemy"):
        return None
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown"]
    return ProblemFound(f"the control database cannot be reached: {reason[0]}")


#: OS conditions an operator meets and fixes: errno -> exit code. The invocation points at the
#: wrong place (2) or the machine lacks a resource (1); anything else stays a bug to report.
_OS_CONDITIONS = {
    errno.EACCES: 2,
    errno.EPERM: 2,
    errno.EROFS: 2,
    errno.ENOTDIR: 2,
    errno.ENOSPC: 1,
    errno.EDQUOT: 1,
    errno.EMFILE: 1,
    errno.ENFILE: 1,
    errno.EIO: 1,
}

#: SQLite (the local index cache, registries) reports the same conditions in its own words.
_SQLITE_CONDITIONS = {
    "database or disk is full": 1,
    "attempt to write a readonly database": 2,
    "unable to open database file": 2,
}


def os_condition(exc: BaseException) -> BcpError | None:
    """An anticipated OS condition (no permission, a full or read-only disk) as the one line to show."""
    if isinstance(exc, OSError) and exc.errno in _OS_CONDITIONS:
        what = (exc.strerror or errno.errorcode.get(exc.errno or 0, "error")).lower()
        where = f": {exc.filename}" if exc.filename else ""
        return _coded(f"{what}{where}", _OS_CONDITIONS[exc.errno])
    if type(exc).__name__ == "OperationalError" and type(exc).__module__ == "sqlite3":
        text = str(exc).strip()
        for words, code in _SQLITE_CONDITIONS.items():
            if words in text:
                return _coded(f"a local SQLite database (the index cache or a registry) failed: {text}", code)
    return None


def _coded(message: str, code: int) -> BcpError:
    return UsageError(message) if code == 2 else ProblemFound(message)
