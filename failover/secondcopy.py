"""Replicating the active site to its second copy while production runs at an offsite site.

The same keyless sync as normal replication (:func:`replication.jobs.replicate_between`),
with the active site as the source: ciphertext only, the signed manifest verified against
the pinned key, every object checked by its content hash. Backups at the active site re-sign
its manifest as they close the repository, so this needs no passphrase either.

Toward the primary nothing is ever deleted, as in failback's reverse replication: a rebuilt
primary may still hold snapshots the active site never received (what the disaster cut off),
and a normal sync would delete them after its delay.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from dc.config import Consortium
from dc.errors import N_, ConfigError, Message
from failover.activesite import ActiveSite
from replication.jobs import replicate_between, site_endpoint, site_options
from replication.ledger import Ledger
from replication.sync import SyncOptions, SyncResult

#: "never": the delay after which the primary would lose what only it holds
NEVER = timedelta(days=365 * 100)


def replicate_second_copy(
    config: Consortium, config_dir: Path | None, active: ActiveSite, target: str, *, ledger: Ledger
) -> SyncResult:
    """Ship the active site's repository to ``target``, one of ``active.second_copy``."""
    if target not in active.second_copy:
        raise ConfigError(
            N_(
                "site '{target}' does not hold the second copy of '{site}' (it goes to: {second_copy}; see "
                "drills.failover.second_copy)"
            ),
            target=target,
            site=active.site,
            second_copy=", ".join(active.second_copy) or Message(N_("nowhere")),
        )
    return ship_between(config, config_dir, active.site, target, ledger=ledger)


def ship_between(
    config: Consortium, config_dir: Path | None, source: str, target: str, *, ledger: Ledger
) -> SyncResult:
    """Keyless replication from ``source``'s repository to ``target``'s; toward the primary it never deletes."""
    _, origin = site_endpoint(config, source, config_dir)
    target_site, endpoint = site_endpoint(config, target, config_dir)
    pinned = target_site.manifest_public_key or config.sites[source].manifest_public_key
    options = site_options(target_site, SyncOptions(pinned_key=pinned), object_lock_days=None, delete_delay=None)
    if target == config.primary_site:
        options = replace(options, delete_delay=NEVER)
    return replicate_between(origin, endpoint, options, ledger=ledger)
