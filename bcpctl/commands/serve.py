"""``serve``: the scheduler service with /metrics, /healthz and /readyz."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.params import FiniteFloat

if TYPE_CHECKING:
    from monitoring.logs import LogFormat


@click.command("serve")
@config_option(required=True)
@click.option("--listen", default="127.0.0.1:9464", show_default=True, metavar="HOST:PORT", help="Where to serve HTTP.")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Jobs run at once.")
@click.option(
    "--lease-ttl",
    type=FiniteFloat(1, 3600),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a dead leader's lease (SQLite) and job claims outlive it.",
)
@click.option(
    "--tick",
    type=FiniteFloat(0.05, 60),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the lease is renewed or tried and running jobs heartbeat.",
)
@click.option(
    "--stop-timeout",
    type=FiniteFloat(0, 86400),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM, wait this long for running jobs before recording them as cancelled.",
)
@click.option(
    "--check-slices",
    type=click.IntRange(1, 1000),
    default=7,
    show_default=True,
    help="Rolling read-data: this many scheduled checks read every pack once.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--queue",
    is_flag=True,
    help="Queue mode (PostgreSQL control database): the leader queues each due backup and every "
    "serve sharing the database runs them; a killed worker's backup is retried by another after --lease-ttl.",
)
@click.option(
    "--host",
    "queue_host",
    metavar="NAME",
    help="With --queue: take only the backups of systems whose run_on is NAME (a host of the "
    "configuration), and none of the others.",
)
@click.option(
    "--metrics-refresh",
    type=FiniteFloat(0, 3600),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Render /metrics every SECONDS and answer scrapes from the last rendering (0: at each scrape).",
)
@click.option("--web", is_flag=True, help="Also serve the partner portal and operator dashboard on the same port.")
@common_options
def serve(
    web: bool,
    config_path: str,
    listen: str,
    workers: int,
    lease_ttl: float,
    tick: float,
    stop_timeout: float,
    check_slices: int,
    log_format: LogFormat,
    queue: bool,
    queue_host: str | None,
    metrics_refresh: float,
) -> None:
    """Run the configured jobs (backups, checks, health checks) and serve /metrics, /healthz, /readyz.

    Only one scheduler runs per control database: a second `serve` waits as a standby and
    takes over when the first one dies. SIGTERM lets running jobs finish (up to
    --stop-timeout), records the rest as cancelled, and exits.

    At its start it upgrades the control database's schema to this version (as `bcpctl db
    upgrade` does), one log line per migration, and refuses to start (exit 1, nothing changed)
    while a `serve` of another version holds the scheduler lease.
    """
    from bcpctl.serve_app import serve as run_service
    from monitoring.controller import ServiceSettings

    settings = ServiceSettings(
        lease_ttl=lease_ttl,
        tick=tick,
        workers=workers,
        stop_timeout=stop_timeout,
        check_slices=check_slices,
        queue=queue,
        queue_host=queue_host,
        metrics_refresh=metrics_refresh,
    )
    summary = run_service(config_path, listen, settings, log_format=log_format, web=web)

    def render(console: Console, data: dict[str, Any]) -> None:
        role = _("was the active scheduler") if data["led"] else _("stood by")
        console.print(
            _("bcpctl serve on {listen} stopped; it {role}; {cancelled_jobs} job(s) cancelled").format(
                listen=data["listen"], role=role, cancelled_jobs=data["cancelled_jobs"]
            )
        )

    output.current().result(summary, render)
    if summary.cancelled_jobs:
        # Cancelled jobs' threads are still running and would keep the interpreter alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


COMMANDS = [serve]
