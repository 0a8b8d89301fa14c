"""The main job on embedded defaults: the whole continuity story, step by step, verified.

``bcpctl demo`` builds the reference consortium (``examples/ibaraki.yaml``) in a fresh
working directory with local directories and SQLite, and walks through the worst day: daily
backups, keyless replication with the control state shipped alongside, the loss of the
primary data center — its whole directory: repository, control database, key material —
*and* of the people who knew its passphrase, a failover at the offsite site that opens the
shipped control state first and recovers every system from escrowed shares with measured RTO
and RPO, a drill and a lawful resident list for the neighbouring city that shelters the
evacuees, both run from the offsite's state alone. Every step calls the same core functions
the commands call and checks its own result; a step that fails stops the story (later steps
depend on it) and makes the demo exit non-zero.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bcpctl.demo.steps import ProgressFactory, StoryState
from dc.errors import N_, BcpError


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class DemoSummary:
    ok: bool
    workdir: str
    report_path: str | None
    steps: list[Step]
    backup: dict[str, Any]
    replication: dict[str, Any]
    #: the staff-loss drill, per system (opened from escrow shares only)
    drill: list[dict[str, Any]]
    #: the failover after the disaster, per system (the RTO and RPO that count)
    failover: list[dict[str, Any]]
    export: dict[str, Any]
    reports: dict[str, str] = field(default_factory=dict)
    #: the control state after the failover: active site, measured control-plane RPO, audit chain
    control_plane: dict[str, Any] = field(default_factory=dict)
    #: bcpctl's own view after the failover: which site serves, and whether a second site protects it
    status: dict[str, Any] = field(default_factory=dict)
    #: the recovery plan of one town's every system: tiers in order, each dependencies-first
    plan: dict[str, Any] = field(default_factory=dict)
    #: the 協議会's cost sheet: per town before, after and saving, and where the sheet is
    cost: dict[str, Any] = field(default_factory=dict)


def _no_progress(description: str) -> AbstractContextManager[Callable[[int], None]]:
    return contextlib.nullcontext(lambda amount: None)


@contextlib.contextmanager
def _cache_inside(workdir: Path) -> Iterator[None]:
    """The demo keeps everything it makes, caches included, inside its working directory: the
    index cache is the primary's until the disaster, then the offsite's."""
    before = os.environ.get("BCPCTL_CACHE_DIR")
    os.environ["BCPCTL_CACHE_DIR"] = str(workdir / "primary" / "cache")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("BCPCTL_CACHE_DIR", None)
        else:
            os.environ["BCPCTL_CACHE_DIR"] = before


def run_demo(
    workdir: Path,
    *,
    scale: float = 1.0,
    all_systems: bool = False,
    on_step: Callable[[int, int, str], None] | None = None,
    progress: ProgressFactory = _no_progress,
) -> DemoSummary:
    """Run every step in order; stop at the first that fails. Never raises for a failed step."""
    from bcpctl.demo.report import write_report

    if workdir.exists() and any(workdir.iterdir()):
        from dc.errors import UsageError

        raise UsageError(
            N_("{workdir} is not empty: the demo builds its consortium in a fresh directory"), workdir=workdir
        )
    workdir.mkdir(parents=True, exist_ok=True)
    s = StoryState(workdir, scale, progress, "all" if all_systems else "default")
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("create the consortium and seed its systems", s.create),
        ("initialise the repository and escrow its key (3 of 5)", s.init_and_escrow),
        ("back up every system (day 1)", lambda: s.backup_day(1)),
        ("a day of changes, then an incremental backup", lambda: s.backup_day(2)),
        ("replicate the ciphertext and the control state offsite, verify without a key", s.replicate),
        ("disaster: the whole primary site is gone, control state and keys included", s.disaster),
        ("failover: the offsite opens the control state first, then every system from 3 shares", s.fail_over),
        ("staff-loss drill at the now active offsite from 3 other shares", s.staff_loss_drill),
        ("the offsite operators get their own passphrase", s.rekey),
        ("つくば市 receives the evacuee list of 常陸大宮市 (DMA-49-11-3)", s.export_for_partner),
        ("the 協議会's cost sheet: each town's bill before and after sharing", s.cost_sheet),
        ("つくば市 finds one evacuee by name and sends one note back", s.find_one_evacuee),
    ]
    steps: list[Step] = []
    with _cache_inside(workdir):
        for number, (name, work) in enumerate(plan, 1):
            if on_step:
                on_step(number, len(plan) + 1, name)
            started = time.monotonic()
            try:
                detail, error = work(), None
            except BcpError as exc:
                detail, error = {}, exc.message
            steps.append(Step(name, error is None, round(time.monotonic() - started, 3), detail, error))
            if error is not None:
                break
    summary = DemoSummary(
        ok=all(step.ok for step in steps) and len(steps) == len(plan),
        workdir=str(workdir),
        report_path=None,
        steps=steps,
        backup=s.backup,
        replication=s.replication,
        drill=s.drill,
        failover=s.failover,
        export=s.export,
        reports=s.reports,
        control_plane=s.control_plane,
        status=s.status,
        plan=s.plan,
        cost=s.cost,
    )
    if on_step:
        on_step(len(plan) + 1, len(plan) + 1, "write the HTML report")
    started = time.monotonic()
    report = workdir / "report.html"
    write_report(report, summary)
    steps.append(Step("write the HTML report", True, round(time.monotonic() - started, 3), {"path": str(report)}))
    summary.report_path = str(report)
    return summary


def default_workdir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(os.environ.get("BCPCTL_DEMO_DIR", "demo-work")).absolute() / stamp
