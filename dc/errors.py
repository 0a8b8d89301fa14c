"""The project-wide exception root.

Every package raises subclasses of :class:`BcpError` with a message written for the operator
who reads it on a bad day; the CLI prints that message as one line and exits with the
class's ``exit_code``. Anything that is not a ``BcpError`` is a bug and shows a traceback
with ``--debug``.
"""

from __future__ import annotations

import errno
import os


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


class Reason(Message):
    """A line from outside bcpctl (an OS's ``strerror``, a library's text) kept exactly in English,
    with the :func:`N_` template that says the same in the operator's language.

    English readers (logs, ``--json``) see what the system said, word for word; a Japanese
    operator sees the catalog's words for the same condition (:data:`OS_REASONS`).
    """

    def __new__(cls, english: str, template: str, /, **params: object) -> Reason:
        line = str.__new__(cls, english)
        line.template, line.params = template, params
        return line

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        # pickled across a forked worker's pipe: str's own would call __new__ without the template
        return str(self), self.template


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


def message_of(error: BcpError) -> Message:
    """An error's line as a :class:`Message` (a reason handed on, e.g. a damaged blob's), keeping its template."""
    return Message(error.template, **error.params)


def joined(lines: list[str]) -> str:
    """``lines`` as one line, ``"; "`` between them, each still shown in the reader's language."""
    if not lines:
        return ""
    line = lines[0]
    for then in lines[1:]:
        line = Message(N_("{first}; {then}"), first=line, then=then)
    return line


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
    return ProblemFound(
        N_("the control database cannot be reached: {reason}"),
        reason=library_reason(getattr(exc, "orig", None) or exc),
    )


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
        what = os_reason(exc, lower=True)
        where = f": {exc.filename}" if exc.filename else ""
        return _coded(N_("{what}{where}"), _OS_CONDITIONS[exc.errno], what=what, where=where)
    if type(exc).__name__ == "OperationalError" and type(exc).__module__ == "sqlite3":
        text = str(exc).strip()
        for words, code in _SQLITE_CONDITIONS.items():
            if words in text:
                return _coded(
                    N_("a local SQLite database (the index cache or a registry) failed: {text}"),
                    code,
                    text=library_reason(exc),
                )
    return None


def _coded(message: str, code: int, **params: object) -> BcpError:
    return UsageError(message, **params) if code == 2 else ProblemFound(message, **params)


#: errno -> the C library's words for it (glibc's ``strerror``), marked for the catalog: the OS
#: conditions operators meet, so that a Japanese line never ends in an English fragment.
OS_REASONS = {
    errno.ENOENT: N_("No such file or directory"),
    errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"),
    errno.EEXIST: N_("File exists"),
    errno.ENOTDIR: N_("Not a directory"),
    errno.EISDIR: N_("Is a directory"),
    errno.ENOSPC: N_("No space left on device"),
    errno.EDQUOT: N_("Disk quota exceeded"),
    errno.EROFS: N_("Read-only file system"),
    errno.ENOTEMPTY: N_("Directory not empty"),
    errno.EXDEV: N_("Invalid cross-device link"),
    errno.EMFILE: N_("Too many open files"),
    errno.ENFILE: N_("Too many open files in system"),
    errno.EIO: N_("Input/output error"),
    errno.EBUSY: N_("Device or resource busy"),
    errno.ETXTBSY: N_("Text file busy"),
    errno.ENAMETOOLONG: N_("File name too long"),
    errno.ELOOP: N_("Too many levels of symbolic links"),
    errno.EFBIG: N_("File too large"),
    errno.ESTALE: N_("Stale file handle"),
    errno.ENXIO: N_("No such device or address"),
    errno.ENODEV: N_("No such device"),
    errno.EINVAL: N_("Invalid argument"),
    errno.ENOMEM: N_("Cannot allocate memory"),
    errno.EAGAIN: N_("Resource temporarily unavailable"),
    errno.EINTR: N_("Interrupted system call"),
    errno.EPIPE: N_("Broken pipe"),
    errno.ENOEXEC: N_("Exec format error"),
    errno.ESRCH: N_("No such process"),
    errno.EOPNOTSUPP: N_("Operation not supported"),
    errno.ECONNREFUSED: N_("Connection refused"),
    errno.ECONNRESET: N_("Connection reset by peer"),
    errno.ECONNABORTED: N_("Software caused connection abort"),
    errno.ETIMEDOUT: N_("Connection timed out"),
    errno.EHOSTUNREACH: N_("No route to host"),
    errno.EHOSTDOWN: N_("Host is down"),
    errno.ENETUNREACH: N_("Network is unreachable"),
    errno.ENETDOWN: N_("Network is down"),
    errno.ENOTCONN: N_("Transport endpoint is not connected"),
    errno.EADDRINUSE: N_("Address already in use"),
    errno.EADDRNOTAVAIL: N_("Cannot assign requested address"),
}


def os_reason(exc: BaseException, *, lower: bool = False) -> str:
    """Why an OS call failed, for ``{strerror}``/``{reason}`` in a message: the system's own words
    in English, the catalog's in Japanese (one table for every place that quotes an ``OSError``).

    An errno outside :data:`OS_REASONS` reads as its code (``ENOLINK``) in Japanese; an exception
    without an errno (a socket's timeout) as what it is. ``lower`` keeps the lower-case English of
    lines that start with the reason.
    """
    if isinstance(exc, TimeoutError) and not getattr(exc, "errno", None):
        return Reason("timed out", N_("timed out"))
    code = getattr(exc, "errno", None)
    english = getattr(exc, "strerror", None) or (str(exc) if str(exc) else type(exc).__name__)
    english = english.lower() if lower else english
    if isinstance(code, int) and code in OS_REASONS:
        return Reason(english, OS_REASONS[code])
    if isinstance(code, int) and code in errno.errorcode:
        return Reason(english, N_("OS error {code}"), code=errno.errorcode[code])
    return english


#: what libraries (libpq, SQLAlchemy, SQLite, paramiko) say in their own words about a condition
#: the operator can fix, marked: matched before the OS's words the text may also hold
_LIBRARY_REASONS = (
    ("password authentication failed", N_("the server refused the user name or password")),
    ("no pg_hba.conf entry", N_("the server's pg_hba.conf does not admit this connection")),
    ("could not translate host name", N_("the host name does not resolve")),
    ("Name or service not known", N_("the host name does not resolve")),
    ("Temporary failure in name resolution", N_("the host name does not resolve")),
    ("timeout expired", N_("timed out")),
    ("timed out", N_("timed out")),
    ("the database system is starting up", N_("the database server is starting up")),
    ("the database system is shutting down", N_("the database server is shutting down")),
    ("the database system is in recovery mode", N_("the database server is in recovery")),
    ("too many clients already", N_("the database server has too many connections")),
    ("permission denied", N_("permission denied")),
    ("server closed the connection unexpectedly", N_("the server closed the connection unexpectedly")),
    ("Error reading SSH protocol banner", N_("the server did not answer as an SSH server")),
    ("Authentication failed", N_("the server refused the credentials")),
    ("unable to open database file", N_("the database file cannot be opened")),
    ("database or disk is full", N_("the disk is full")),
    ("attempt to write a readonly database", N_("the database is read-only")),
    ("file is not a database", N_("not a database file")),
    ("database disk image is malformed", N_("the database file is damaged")),
    ("database is locked", N_("the database is locked by another process")),
)


def library_reason(exc: BaseException | str) -> str:
    """Why a library call (a database or SSH connection, an SQLite file) failed, for ``{reason}``/``{exc}``.

    English keeps the library's first line word for word; a Japanese operator reads the catalog's
    words for the condition it names (a refused password, a closed port, an unknown host name).
    A text naming nothing known stays as it is.
    """
    if isinstance(exc, OSError) and exc.errno:
        return os_reason(exc)
    if isinstance(exc, TimeoutError):
        return os_reason(exc)
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    whole = str(exc)
    for words, template in _LIBRARY_REASONS:
        if words in whole:
            return Reason(text, template)
    for code, template in OS_REASONS.items():
        if os.strerror(code) in whole:
            return Reason(text, template)
    return text
