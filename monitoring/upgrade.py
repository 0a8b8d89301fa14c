"""Upgrading the control database's schema where a scheduler may be running on it.

The migrations change tables that a running ``bcpctl serve`` reads and writes; one of another
version would then fail in the middle of its jobs, or write rows the new schema no longer
means. So the upgrade is refused while a scheduler of another version holds the lease
(exit 1, nothing changed): stop it, upgrade, start the new version. A standby of the same
version may keep running.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from dc import schema
from dc.errors import N_, ProblemFound
from monitoring.lease import bcpctl_version, current_holder

log = logging.getLogger("bcpctl.schema")


class OtherVersionRunning(ProblemFound):
    """A scheduler of another bcpctl version holds the lease (exit 1): the schema is left alone."""


def upgrade_control_db(engine: Engine) -> schema.UpgradeResult:
    """Apply the pending migrations, unless a scheduler of another version holds the lease; logged."""
    version = bcpctl_version()
    holder = current_holder(engine)
    if holder is not None and holder.version != version:
        theirs = f"version {holder.version}" if holder.version else "a version from before versions were recorded"
        raise OtherVersionRunning(
            N_(
                "bcpctl serve {holder} ({theirs}) holds the scheduler lease of {schema}; this is bcpctl "
                "{version}: stop it before the schema is upgraded (nothing was changed)"
            ),
            holder=holder.holder,
            theirs=theirs,
            schema=schema.database_name(engine),
            version=version,
        )
    result = schema.upgrade(engine)
    if not result.applied:
        log.info("control database %s: schema at revision %s, nothing to upgrade", result.database, result.after)
    return result
