"""``replicate --follow``: the long-running half of ``replicate``, one event per round that did something."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bcpctl import output
from bcpctl.i18n import _, shown
from dc.errors import ProblemFound

if TYPE_CHECKING:
    from rich.console import Console

    from dc.config import Consortium
    from replication.follow import FollowRound
    from replication.jobs import Endpoint
    from replication.sync import SyncOptions


@contextmanager
def _stopped_by_signals() -> Iterator[threading.Event]:
    """An event SIGTERM and SIGINT set: the round in flight finishes its objects, then the loop ends."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _render_round(console: Console, data: dict[str, Any]) -> None:
    lags = ", ".join(
        f"{lag['system']} {lag['recovery_point_lag_seconds']:.0f}s"
        for lag in data["lag"]
        if lag["recovery_point_lag_seconds"] is not None
    )
    line = _("{at}: {kind} round, {objects} objects ({wal} WAL) in {seconds:.1f}s").format(
        at=output.jst(data["at"]),
        kind=data["kind"],
        objects=data["objects_copied"],
        wal=data["wal_copied"],
        seconds=data["seconds"],
    )
    if lags:
        line += "; " + _("recovery point lag: {lags}").format(lags=lags)
    if data["problem"]:
        line += "; " + _("problem: {problem}").format(problem=shown(data["problem"]))
    console.print(line, markup=False)


def _render_stopped(console: Console, data: dict[str, Any]) -> None:
    console.print(
        _("stopped after {rounds} rounds: {objects} objects sent, {problems} rounds with a problem").format(
            rounds=data["rounds"], objects=data["objects_copied"], problems=data["problems"]
        )
    )


def run_follow(
    endpoints: tuple[Endpoint, Endpoint] | None,
    consortium: Consortium | None,
    config_dir: Path | None,
    options: SyncOptions,
    *,
    interval: float,
    reconcile: float,
    site: str | None,
    object_lock_days: int | None,
    delete_delay: timedelta | None,
) -> None:
    """Follow the primary until SIGTERM/SIGINT; every round that sent something or failed is one event."""
    from replication.follow import FollowOptions
    from replication.jobs import follow_between, follow_site

    out = output.current()

    def report(round_: FollowRound) -> None:
        out.event({"event": "round", **output.to_jsonable(round_)}, _render_round)

    follow_options = FollowOptions(interval=interval, reconcile=reconcile)
    with _stopped_by_signals() as stop:
        if endpoints is not None:
            summary = follow_between(*endpoints, options, follow_options, stop=stop, report=report)
        else:
            assert consortium is not None
            summary = follow_site(
                consortium,
                config_dir,
                options,
                follow_options,
                stop=stop,
                report=report,
                site=site,
                object_lock_days=object_lock_days,
                delete_delay=delete_delay,
            )
    out.event({"event": "stopped", **output.to_jsonable(summary)}, _render_stopped)
    if summary.rounds and summary.problems == summary.rounds:
        raise ProblemFound(f"no round of replication to {summary.target} succeeded")
