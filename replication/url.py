"""Repository URLs to backends: the one place that knows every storage scheme.

``backup/`` defines the :class:`~backup.backend.Backend` protocol and the local directory;
this module maps a URL to whichever backend implements it, so every command accepts a plain
path, ``file://``, ``s3://`` or ``sftp://`` alike.
"""

from __future__ import annotations

from urllib.parse import urlparse

from backup.backend import Backend, local_backend_from_url
from dc.errors import UsageError


def open_backend(url: str, *, create: bool = False) -> Backend:
    """Open the storage behind ``url``; ``create`` makes a missing local directory."""
    local = local_backend_from_url(url, create=create)
    if local is not None:
        return local
    scheme = urlparse(url).scheme
    raise UsageError(f"unsupported repository URL scheme '{scheme}' (use a path, file://, s3:// or sftp://)")
