"""Reading secrets from where operators keep them: environment variables, files, a TTY prompt.

Secrets never come from command-line arguments (visible in ``ps``) or the configuration file,
and nothing here logs them.

Every secret, share and private key bcpctl reads from a file or a variable goes through
:func:`read_secret_bytes` / :func:`read_secret_file` / :func:`secret_from_env`, so that the wrong
thing given as a secret (a FIFO, a device such as ``/dev/zero``, a directory, a file in another
encoding) is one clear line with the caller's exit code — never a hang, all of the machine's
memory or an internal error. A symlink to a regular file is followed, as operators keep secret
files that way (``/etc/bcpctl/pw -> /run/secrets/pw``); what matters is what was opened.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys

from dc.errors import N_, BcpError, Message, UsageError, os_reason

PASSWORD_ENV = "BCPCTL_PASSWORD"

#: No passphrase, share sheet, approver secret or private key comes near this; a larger file is
#: the wrong file, and reading it whole would only cost memory.
MAX_SECRET_BYTES = 64 * 1024


def read_secret_bytes(
    path: str | os.PathLike[str], what: str = "secret", *, error: type[BcpError] = UsageError
) -> bytes:
    """The bytes of the regular file at ``path`` (at most :data:`MAX_SECRET_BYTES`).

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer; the
    type is judged by ``fstat`` of what was opened, so a file swapped after a check cannot slip
    through. ``error`` is the exception to raise (approver credentials refuse with exit 3).
    """

    def unreadable(exc: OSError) -> BcpError:
        return error(
            N_("cannot read {what} file {path}: {strerror}"),
            what=_noun(what),
            path=os.fsdecode(path),
            strerror=os_reason(exc),
        )

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise unreadable(exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(
                N_("{what} file {path} is not a regular file ({kind})"),
                what=_noun(what),
                path=os.fsdecode(path),
                kind=_kind(st.st_mode),
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SECRET_BYTES:  # reading one byte past the limit is what proves a file too large
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_SECRET_BYTES:
            raise error(
                N_("{what} file {path} is larger than {limit} bytes: not a {what}"),
                what=_noun(what),
                path=os.fsdecode(path),
                limit=MAX_SECRET_BYTES,
            )
        return b"".join(chunks)
    except OSError as exc:
        raise unreadable(exc) from None
    finally:
        os.close(fd)


def read_secret_text(path: str | os.PathLike[str], what: str = "secret", *, error: type[BcpError] = UsageError) -> str:
    """The whole file as UTF-8 text (see :func:`read_secret_bytes`); other encodings are refused."""
    data = read_secret_bytes(path, what, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(
            N_("{what} file {path} is not UTF-8 text (save it as UTF-8)"), what=_noun(what), path=os.fsdecode(path)
        ) from None


def read_secret_file(path: str | os.PathLike[str], what: str = "secret", *, error: type[BcpError] = UsageError) -> str:
    """The file's content without its trailing newline; an empty file is refused."""
    secret = read_secret_text(path, what, error=error).rstrip("\r\n")
    if not secret:
        raise error(N_("{what} file {path} is empty"), what=_noun(what), path=os.fsdecode(path))
    return secret


def secret_from_env(name: str, what: str = "secret", *, error: type[BcpError] = UsageError) -> str | None:
    """``$name`` as text, ``None`` when unset or empty.

    A value that is not UTF-8 (a Latin-1 terminal's passphrase reaches Python surrogate-escaped)
    would hash differently from the same passphrase typed elsewhere; it is refused, not guessed.
    """
    value = os.environ.get(name)
    if not value:
        return None
    where = Message(N_("${name} ({what})"), name=name, what=_noun(what))
    _utf8(value, where, error=error)
    if len(value) > MAX_SECRET_BYTES:
        raise error(N_("{where} is longer than {limit} characters"), where=where, limit=MAX_SECRET_BYTES)
    return value


def read_password(
    *,
    file: str | os.PathLike[str] | None = None,
    env: str = PASSWORD_ENV,
    prompt: str | None = "Repository passphrase: ",
) -> str:
    """A passphrase from ``file``, else ``$env``, else a TTY prompt; never from argv."""
    if file is not None:
        return read_secret_file(file, "password")
    if value := secret_from_env(env, "passphrase"):
        return value
    if prompt and sys.stdin.isatty():
        value = getpass.getpass(prompt)
        if value:
            return _utf8(value, Message(N_("the passphrase typed")))
    raise UsageError(N_("no passphrase: set {env} or pass --password-file"), env=env)


def _utf8(value: str, where: str, *, error: type[BcpError] = UsageError) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(N_("{where} is not UTF-8 text; use a UTF-8 locale or a file saved as UTF-8"), where=where) from None
    return value


def _kind(mode: int) -> Message:
    for test, name in (
        (stat.S_ISFIFO, N_("a FIFO")),
        (stat.S_ISDIR, N_("a directory")),
        (stat.S_ISCHR, N_("a character device")),
        (stat.S_ISBLK, N_("a block device")),
        (stat.S_ISSOCK, N_("a socket")),
    ):
        if test(mode):
            return Message(name)
    return Message(N_("not a file"))


#: what callers name the secret they read: marked, so the noun is Japanese in a Japanese line
_NOUNS = {
    noun: Message(noun)
    for noun in (
        N_("secret"),
        N_("password"),
        N_("passphrase"),
        N_("SSH key passphrase"),
        N_("signing key"),
        N_("control signing key"),
        N_("pseudonym secret"),
        N_("identity"),
        N_("escrow share"),
        N_("approver secret"),
        N_("operator secret"),
        N_("portal token"),
    )
}


def _noun(what: str) -> str:
    return _NOUNS.get(what, what)
