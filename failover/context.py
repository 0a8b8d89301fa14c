"""What every run of a drill, failover or failback works from: the configuration and the control database.

Its own module because the run's life (:mod:`failover.lifecycle`) and its reports
(:mod:`failover.reports`) both take it, and the lifecycle writes the reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from sqlalchemy import Engine

from dc.config import Consortium
from dc.errors import N_, UsageError
from failover.activesite import active_site
from failover.settings import DrillSettings, drill_settings
from storage.backend import Backend
from storage.site import open_site


class SmokeQueries(TypedDict):
    """The smoke-test part of a :class:`~failover.recover.RecoveryContext`, by field name."""

    smoke: dict[str, str]
    smoke_expect: dict[str, str]


@dataclass
class RunContext:
    """What every run needs: the configuration (and where it was read from) and the control database.

    The control database opens on first use: a failover opens the one it promoted at the
    offsite instead, and must not create an empty one where the lost primary's was.
    """

    config: Consortium
    config_dir: Path | None
    settings: DrillSettings
    _state: Engine | None = None
    #: the configuration file, when read from one: a recovered cluster's ``restore_command`` names it
    config_file: Path | None = None
    #: a line the core made (a warning, an error, a check's detail) in Japanese, for the reports that
    #: show Japanese first: the CLI's catalog, which the core cannot import (without it: the English)
    japanese: Callable[[str], str] = str

    @classmethod
    def create(cls, config: Consortium, where: Path | None, state: Engine | None = None) -> RunContext:
        """``where`` is the configuration file (named in errors) or the directory it was read from;
        without ``state`` the configuration's control database is opened when first needed."""
        config_dir: Path | None
        if where is not None and where.suffix in (".yaml", ".yml"):
            source, config_dir = str(where), where.parent
        else:
            source, config_dir = str(where or "<config>"), where
        config_file = where if where is not None and where.suffix in (".yaml", ".yml") else None
        return cls(config, config_dir, drill_settings(config, source), state, config_file)

    @property
    def state(self) -> Engine:
        if self._state is None:
            from dc.state import open_state

            self._state = open_state(self.config.control_db)
        return self._state

    @state.setter
    def state(self, engine: Engine) -> None:
        self._state = engine

    def smoke(self) -> SmokeQueries:
        """``smoke=`` and ``smoke_expect=`` for a :class:`~failover.recover.RecoveryContext`."""
        return {
            "smoke": {name: s.smoke for name, s in self.config.systems.items() if s.smoke},
            "smoke_expect": dict(self.settings.smoke_expect),
        }

    def backend(self, site: str) -> Backend:
        """The site's repository storage, reached with the site's pinned SSH host keys."""
        return open_site(self.config, site, config_dir=self.config_dir)

    def default_offsite(self) -> str:
        offsite = self.config.offsite_sites
        if not offsite:
            raise UsageError(N_("the configuration has no site with role: offsite to drill at"))
        return offsite[0]

    def drill_site(self) -> str:
        """Where a drill goes unless told: the active site while failed over — its repository
        receives the backups of what runs there now and its sandboxes (``drill_dsn``,
        ``drill_dir``) stand beside production, whose own targets are occupied — else the
        first offsite site."""
        active = active_site(self.config, self.state)
        return active.site if active.failed_over else self.default_offsite()

    def site(self, name: str | None) -> str:
        name = name or self.drill_site()
        if name not in self.config.sites:
            raise UsageError(
                N_("unknown site '{name}' (known: {sites})"), name=name, sites=", ".join(self.config.sites)
            )
        return name
