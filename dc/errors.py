"""The project-wide exception root.

Every package raises subclasses of :class:`BcpError` with a message written for the operator
who reads it on a bad day; the CLI prints that message as one line and exits with the
class's ``exit_code``. Anything that is not a ``BcpError`` is a bug and shows a traceback
with ``--debug``.
"""

from __future__ import annotations

import errno


def N_(message: str) -> str:
    """Marks an error's message template for the catalog (``scripts/catalog.py``); returns it unchanged.

    The core never imports bcpctl (layers point down): it names the English template and its
    parameters, and the CLI translates the template where it prints the line
    (:func:`bcpctl.i18n.error_message`).
    """
    return message


class Message(str):
    """An English line for people that remembers its :func:`N_` template and parameters.

    It is a ``str`` everywhere (JSON, the web, comparisons); the CLI shows it in the
    operator's language. For texts that travel before they reach an error (a policy's reasons,
    a probe's problem) and become a :class:`BcpError`'s message or one of its parameters.
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, /, **params: object) -> Message:
        line = super().__new__(cls, template.format(**params) if params else template)
        line.template, line.params = template, params
        return line


class BcpError(Exception):
    """An error with a user-facing one-line message and a documented exit code.

    ``message`` is a template marked with :func:`N_`; ``params`` fill its ``{name}`` fields.
    :attr:`message` is the English line (logs, ``--json``, tests); :attr:`template` and
    :attr:`params` let the CLI show the same line in the operator's language.
    """

    #: 1: the operation ran and found a problem (damage, failed verification).
    exit_code: int = 1

    def __init__(self, message: str, /, **params: object) -> None:
        if isinstance(message, Message) and not params:
            params = message.params
            message = message.template
        self.template = message
        self.params = params
        self.message = message.format(**params) if params else message
        super().__init__(self.message)

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
    return ProblemFound(N_("the control database cannot be reached: {reason}"), reason=reason[0])


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
        return _coded(N_("{what}{where}"), _OS_CONDITIONS[exc.errno], what=what, where=where)
    if type(exc).__name__ == "OperationalError" and type(exc).__module__ == "sqlite3":
        text = str(exc).strip()
        for words, code in _SQLITE_CONDITIONS.items():
            if words in text:
                return _coded(
                    N_("a local SQLite database (the index cache or a registry) failed: {text}"), code, text=text
                )
    return None


def _coded(message: str, code: int, **params: object) -> BcpError:
    return UsageError(message, **params) if code == 2 else ProblemFound(message, **params)
