"""The project-wide exception root.

Every package raises subclasses of :class:`BcpError` with a message written for the operator
who reads it on a bad day; the CLI prints that message as one line and exits with the
class's ``exit_code``. Anything that is not a ``BcpError`` is a bug and shows a traceback
with ``--debug``.
"""

from __future__ import annotations


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
