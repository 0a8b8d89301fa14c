"""``/metrics`` for the control plane: its RPO, each site's copy age, the RPO a failover measured.

The copy age comes from the replication ledger, which every replication run updates with the
newest snapshot of each system at each target — the control-state copies are snapshots of
:data:`~failover.controlplane.CONTROL_SYSTEM`; on PostgreSQL the cycle's heartbeat records how
far the standby replayed under the same name — so a scrape reads one table and no site. At the
active site of a failover the state is live, not a copy: no age is exported for it, and the
control-plane RPO that failover measured is exported instead.

On PostgreSQL, whether each standby streams now is read from the live database's own
``pg_stat_replication`` (``bcp_control_plane_standby_streaming``), and how far its replay is
behind now (``bcp_control_plane_standby_lag_seconds``): the copy age only moves once a cycle,
a broken or lagging stream shows at the next scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from dc.clock import utcnow
from failover.controlplane import CONTROL_SYSTEM, copy_age, plane_kind
from monitoring.provider import Reading, SourceContext
from storage.site import site_of_repository


def readings(ctx: SourceContext) -> Iterator[Reading]:
    from failover.records import active_failover, load_document
    from replication import ledger

    yield Reading("bcp_control_plane_rpo_seconds", (), float(ctx.config.control_plane_rpo))
    active = active_failover(ctx.engine)
    live = active.target_site if active else None
    sites = site_of_repository(ctx.config)
    now = utcnow()
    lag = ledger.lag.c
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(lag.target, lag.target_newest).where(lag.system == CONTROL_SYSTEM))
        for target, newest in rows:
            site = sites.get(target)
            age = copy_age(newest, now)
            if site is not None and site != live and age is not None:
                yield Reading("bcp_control_plane_copy_age_seconds", (site,), age)
    if ctx.engine.dialect.name == "postgresql" and plane_kind(ctx.config) == "postgres-standby":
        from failover.activesite import active_site
        from failover.control_links import standby_links

        for site, link in standby_links(ctx.engine, active_site(ctx.config, ctx.engine).second_copy).items():
            yield Reading("bcp_control_plane_standby_streaming", (site,), 1.0 if link.streaming else 0.0)
            if link.lag_seconds is not None:
                yield Reading("bcp_control_plane_standby_lag_seconds", (site,), link.lag_seconds)
    if active is not None and active.target_site:
        found = load_document(ctx.engine, active.id)
        measured = ((found[1] or {}).get("control_plane") or {}).get("rpo_seconds") if found else None
        if isinstance(measured, int | float):
            yield Reading("bcp_control_plane_failover_rpo_seconds", (active.target_site,), float(measured))
