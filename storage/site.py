"""The storage of one site of the consortium: the one way every caller opens "site X's repository".

A site's repository URL alone is not enough to reach it: an SFTP site is reached only with
the site's pinned ``known_hosts`` (relative to the configuration file), never with whatever
the environment offers. Backups, checks, drills, exports, health probes and the web all
open a site here, so none of them can forget that.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dc.errors import N_, ConfigError
from storage.backend import Backend
from storage.url import open_backend, repository_url_key

if TYPE_CHECKING:  # pydantic models are slow to import; the configuration is already loaded
    from dc.config import Consortium, Site


def site_spec(config: Consortium, site: str) -> Site:
    """The configuration of ``site``; an unknown name is a configuration error naming the known ones."""
    if site not in config.sites:
        raise ConfigError(N_("unknown site '{site}' (known: {sites})"), site=site, sites=", ".join(config.sites))
    return config.sites[site]


def site_known_hosts(spec: Site, config_dir: Path | None) -> str | None:
    """The site's pinned ``known_hosts`` file, relative paths taken from the configuration's directory."""
    if not spec.known_hosts:
        return None
    if config_dir is not None and not os.path.isabs(spec.known_hosts):
        return str(config_dir / spec.known_hosts)
    return spec.known_hosts


def open_site(
    config: Consortium,
    site: str,
    *,
    config_dir: Path | None = None,
    create: bool = False,
    connections: int = 16,
) -> Backend:
    """Open the repository storage of ``site`` (not the repository: no key is needed or read).

    Remote storage comes with retries (:func:`~storage.url.open_backend`); ``connections``
    sizes an S3 connection pool to the caller's concurrency. The caller closes the backend.
    """
    spec = site_spec(config, site)
    return open_backend(
        spec.repository,
        create=create,
        known_hosts=site_known_hosts(spec, config_dir),
        connections=connections,
    )


def site_of_repository(config: Consortium) -> dict[str, str]:
    """Each site's name by its repository URL, as backends name themselves (``Backend.url``)."""
    return {repository_url_key(site.repository): name for name, site in config.sites.items()}
