"""Repository URLs to backends: the one place that knows every storage scheme.

Maps a URL to whichever backend implements the :class:`~storage.backend.Backend` protocol,
so every command accepts a plain path, ``file://``, ``s3://`` or ``sftp://`` alike. Remote
backends come wrapped in :class:`~storage.retry.RetryingBackend`: a network blip is retried,
not fatal. The S3 and SFTP modules are imported only when a URL needs them (boto3 and
paramiko cost a noticeable part of a short command's start-up).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from dc.errors import N_, BcpError, UsageError
from storage.backend import Backend
from storage.local import local_backend_from_url
from storage.urlparts import split_url


def open_backend(
    url: str,
    *,
    create: bool = False,
    known_hosts: str | None = None,
    connections: int = 16,
    retry: bool = True,
) -> Backend:
    """Open the storage behind ``url``.

    ``create`` makes a missing local or SFTP directory (an S3 bucket is never created: its
    Object Lock setting can only be chosen at creation, by the storage's administrator).
    ``known_hosts`` pins SFTP host keys (the site's ``known_hosts``); ``connections`` sizes
    the S3 connection pool to the caller's concurrency.
    """
    local = local_backend_from_url(url, create=create)
    if local is not None:
        return local
    scheme = split_url(url).scheme
    backend: Backend
    if scheme == "s3":
        from storage.s3 import S3Backend, parse_s3_url

        backend = S3Backend(parse_s3_url(url), connections=connections)
    elif scheme == "sftp":
        from storage.sftp import SftpBackend, parse_sftp_url

        backend = SftpBackend(parse_sftp_url(url), known_hosts=known_hosts, create=create)
    else:
        raise UsageError(
            N_("unsupported repository URL scheme '{scheme}' (use a path, file://, s3:// or sftp://)"), scheme=scheme
        )
    if retry:
        from storage.retry import with_retries

        backend = with_retries(backend)
    return backend


def repository_url_key(url: str) -> str:
    """A repository URL in the form its backend reports as ``url``: what backup, check and
    replication runs record, so a configured site can be matched with its recorded runs."""
    if "://" not in url:
        return f"file://{Path(url).absolute()}"
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return f"file://{Path(unquote(parsed.path)).absolute()}"
    try:
        if parsed.scheme == "s3":
            from storage.s3url import parse_s3_url

            return parse_s3_url(url).url
        if parsed.scheme == "sftp":
            from storage.sftp import parse_sftp_url

            return parse_sftp_url(url).url
    except BcpError:
        pass  # an unparsable URL matches no recorded run, which the alerts then show
    return url
