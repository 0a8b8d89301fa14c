"""Splitting a repository or endpoint URL: a malformed one is a usage error, never a crash.

``urllib.parse`` raises :class:`ValueError` for some malformed URLs (an unclosed IPv6 bracket
``http://[::1``, a port out of range or not a number — the latter only when ``.port`` is read).
Every storage URL from a user goes through :func:`split_url` so that is one clear line, exit 2.
"""

from __future__ import annotations

from urllib.parse import ParseResult, urlparse

from dc.errors import UsageError


def split_url(url: str, what: str = "repository URL") -> ParseResult:
    """``urlparse(url)`` with its host and port checked; :class:`UsageError` when malformed."""
    try:
        parsed = urlparse(url)
        parsed.hostname  # noqa: B018 — parsing the host validates IPv6 brackets
    except ValueError as exc:
        raise UsageError(f"malformed {what} {url!r}: {exc}") from None
    try:
        parsed.port  # noqa: B018 — only reading the port validates it
    except ValueError:
        raise UsageError(f"invalid port in {what} {url!r}") from None
    return parsed


def endpoint_url(url: str, what: str) -> str:
    """An ``http://`` or ``https://`` endpoint with a host, as given; :class:`UsageError` otherwise."""
    parsed = split_url(url, what)
    if parsed.scheme not in ("http", "https"):
        raise UsageError(f"{what} must be an http:// or https:// URL, got {url}")
    if not parsed.hostname:
        raise UsageError(f"{what} has no host: {url}")
    return url
