"""Splitting a repository or endpoint URL: a malformed one is a usage error, never a crash.

``urllib.parse`` raises :class:`ValueError` for some malformed URLs (an unclosed IPv6 bracket
``http://[::1``, a port out of range or not a number — the latter only when ``.port`` is read).
Every storage URL from a user goes through :func:`split_url` so that is one clear line, exit 2.

Secrets never sit in a storage URL: URLs end up in logs, the journal of the timer that runs a
command, ``bcpctl.yaml`` and error messages. So userinfo is refused wherever it appears — the
repository URL itself and every URL nested in its parameters (``?endpoint=http://…``) — with
the one exception of the SSH user of an ``sftp://USER@HOST`` URL, which is a name, not a secret.
No message repeats what a refused URL held there.
"""

from __future__ import annotations

import re
from urllib.parse import ParseResult, parse_qsl, urlparse

from dc.errors import N_, Message, UsageError

_USERINFO = re.compile(r"(//)[^/?#]*@")
_HINTS = {
    "s3": Message(N_("use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or profile=")),
    "sftp": Message(N_("use a key file or the SSH agent")),
}
_NO_HINT = Message(N_("give them through the environment or a file named in the configuration"))


def redact(url: str) -> str:
    """``url`` with the userinfo of it and of every URL nested in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", url)


#: the noun of refusals about a repository URL, marked: Japanese in a Japanese line
REPOSITORY_URL = Message(N_("repository URL"))


def split_url(url: str, what: str = REPOSITORY_URL) -> ParseResult:
    """``urlparse(url)`` with its host, port and the absence of credentials checked;
    :class:`UsageError` when malformed."""
    return _split(url, what, hint_scheme=None)


def _split(url: str, what: str, *, hint_scheme: str | None) -> ParseResult:
    """``hint_scheme``: for a URL nested in another, the outer URL's scheme (what the hint is about)."""
    try:
        parsed = urlparse(url)
        parsed.hostname  # noqa: B018 — parsing the host validates IPv6 brackets
    except ValueError as exc:
        raise UsageError(N_("malformed {what} {redact!r}: {exc}"), what=what, redact=redact(url), exc=exc) from None
    _refuse_credentials(parsed, what, hint_scheme)
    try:
        parsed.port  # noqa: B018 — only reading the port validates it
    except ValueError:
        raise UsageError(N_("invalid port in {what} {redact!r}"), what=what, redact=redact(url)) from None
    for name, value in parse_qsl(parsed.query):
        if "://" in value:
            _split(
                value,
                Message(N_("{name}= URL inside the {what}"), name=name, what=what),
                hint_scheme=hint_scheme or parsed.scheme,
            )
    return parsed


def _refuse_credentials(parsed: ParseResult, what: str, hint_scheme: str | None) -> None:
    nested = hint_scheme is not None
    if "@" not in parsed.netloc:
        return
    if parsed.scheme == "sftp" and not nested and parsed.password is None:
        return  # sftp://USER@HOST: the SSH user to log in as
    if parsed.scheme == "sftp" and not nested:
        raise UsageError(N_("passwords do not belong in an sftp:// URL: {_HINTS}"), _HINTS=_HINTS["sftp"])
    hint = _HINTS.get(hint_scheme or parsed.scheme, _NO_HINT)
    raise UsageError(
        N_("credentials do not belong in the URL (a user or password in the {what}): {hint}"), what=what, hint=hint
    )


def endpoint_url(url: str, what: str) -> str:
    """An ``http://`` or ``https://`` endpoint with a host, as given; :class:`UsageError` otherwise."""
    parsed = split_url(url, what)
    if parsed.scheme not in ("http", "https"):
        raise UsageError(N_("{what} must be an http:// or https:// URL, got {redact}"), what=what, redact=redact(url))
    if not parsed.hostname:
        raise UsageError(N_("{what} has no host: {redact}"), what=what, redact=redact(url))
    return url
