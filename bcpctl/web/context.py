"""Everything a request handler needs, loaded and validated once when the app is built.

A bad ``web:``, ``exports:`` or ``drills:`` section fails here with the same one-line
``ConfigError`` the CLI prints, before the server listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from bcpctl.i18n import shown
from bcpctl.web.drilljobs import DrillJobs
from bcpctl.web.ratelimit import RateLimiter
from bcpctl.web.settings import WebSettings, bundle_root, load_web_settings
from dc.clock import utcnow
from dc.config import Consortium, load_config
from dc.state import open_state
from failover.context import RunContext
from failover.settings import DrillSettings, drill_settings
from victim_support.enrolment import with_enrolled
from victim_support.settings import ExportSettings, load_export_settings


@dataclass
class WebContext:
    #: the configuration with the partners enrolled in the control database (see :meth:`refresh_partners`)
    config: Consortium
    config_path: Path
    state: Engine
    exports: ExportSettings
    web: WebSettings
    drills: DrillSettings
    clock: Callable[[], datetime] = utcnow
    partner_limiter: RateLimiter = field(init=False)
    login_limiter: RateLimiter = field(init=False)
    #: a portal practice export restores the replica: one per partner a minute
    practice_limiter: RateLimiter = field(init=False)
    jobs: DrillJobs = field(init=False)
    #: the configuration as the file has it
    configured: Consortium = field(init=False)

    def __post_init__(self) -> None:
        self.configured = self.config
        self.refresh_partners()
        self.partner_limiter = RateLimiter(self.web.partner_requests_per_minute)
        self.login_limiter = RateLimiter(self.web.logins_per_minute)
        self.practice_limiter = RateLimiter(1)
        self.jobs = DrillJobs(self.state, self.run_context)

    @classmethod
    def load(cls, config_path: str | Path | None, *, state: Engine | None = None) -> WebContext:
        config, resolved = load_config(config_path)
        source = str(resolved)
        return cls(
            config,
            resolved,
            state or open_state(config.control_db),
            load_export_settings(config, source),
            load_web_settings(config, source),
            drill_settings(config, source),
        )

    def refresh_partners(self) -> None:
        """Re-read enrolled and removed partners: a partner removed while the server runs is no partner at once."""
        self.config = with_enrolled(self.configured, self.state)

    @property
    def config_dir(self) -> Path:
        return self.config_path.parent

    def now(self) -> datetime:
        return self.clock()

    @property
    def bundle_root(self) -> Path:
        return bundle_root(self.web, self.config_dir)

    @property
    def drill_fresh(self) -> int:
        return self.web.drill_fresh or self.drills.max_age

    def run_context(self) -> RunContext:
        ctx = RunContext.create(self.config, self.config_path, self.state)
        ctx.japanese = lambda line: shown(line, "ja")  # the reports show Japanese first
        return ctx
