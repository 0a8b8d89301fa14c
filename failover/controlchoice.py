"""Which :class:`~failover.controlplane.ControlPlane` a configuration gets.

Its own module so that the protocol (:mod:`failover.controlplane`) never imports its
implementations, which all import it: callers that need *an* implementation import this.
"""

from __future__ import annotations

from pathlib import Path

from dc.config import Consortium
from failover.control_postgres import PostgresStandby
from failover.control_shared import SharedDatabase
from failover.control_sqlite import SqliteShipping
from failover.controlplane import ControlPlane, plane_kind


def control_plane(config: Consortium, config_dir: Path | None) -> ControlPlane:
    """The implementation for what the control databases run on (:func:`~failover.controlplane.plane_kind`)."""
    kind = plane_kind(config)
    if kind == SqliteShipping.kind:
        return SqliteShipping(config, config_dir)
    if kind == PostgresStandby.kind:
        return PostgresStandby(config, config_dir)
    return SharedDatabase(config, config_dir)
