"""Scheduled repository checks: a rolling ``--read-data --subset N/M``, recorded per site.

Reading every pack every night would download the whole repository daily; restic and Borg
users settle for a rolling subset instead. Each scheduled check verifies the structure in
full and reads the next slice N of M (``backup.check.in_subset`` picks packs by name), so M
consecutive checks read every pack once. The slice comes from the previous recorded check,
so the rotation survives restarts and leader changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, Column, Engine, Integer, String, Table, Text, func, insert, select

from dc.clock import utcnow
from dc.state import UtcDateTime, metadata, open_state
from storage.site import site_of_repository

if TYPE_CHECKING:  # /metrics reads records without importing the repository format
    from backup.checkreport import CheckReport
    from dc.config import Consortium

repository_checks = Table(
    "repository_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False, index=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("read_data", Boolean, nullable=False),
    Column("subset_n", Integer),
    Column("subset_m", Integer),
    Column("snapshots", Integer, nullable=False, default=0),
    Column("packs", Integer, nullable=False, default=0),
    Column("packs_read", Integer, nullable=False, default=0),
    Column("bytes_read", BigInteger, nullable=False, default=0),
    Column("problems", Integer, nullable=False, default=0),
    #: the first problem's object and message, or why the check could not run
    Column("detail", Text),
)


@dataclass(frozen=True)
class CheckRecord:
    site: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    read_data: bool
    subset: tuple[int, int] | None
    snapshots: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    problems: int = 0
    detail: str | None = None


def next_subset(previous: tuple[int, int] | None, slices: int) -> tuple[int, int]:
    """The slice after ``previous``: 1/M after M/M, and 1/M again when M changed."""
    if slices < 1:
        raise ValueError("slices must be at least 1")
    if previous is None or previous[1] != slices:
        return (1, slices)
    return (previous[0] % slices + 1, slices)


def last_subset(engine: Engine, site: str) -> tuple[int, int] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(repository_checks.c.subset_n, repository_checks.c.subset_m)
            .where(repository_checks.c.site == site, repository_checks.c.subset_n.is_not(None))
            .order_by(repository_checks.c.id.desc())
            .limit(1)
        ).first()
    return (row.subset_n, row.subset_m) if row else None


def report_record(
    site: str,
    started: datetime,
    finished: datetime,
    report: CheckReport,
    *,
    subset: tuple[int, int] | None,
    read_data: bool,
) -> CheckRecord:
    """The record of a finished check of ``site``, whoever ran it (the scheduler or ``bcpctl check``)."""
    first = report.problems[0] if report.problems else None
    return CheckRecord(
        site,
        started,
        finished,
        report.ok,
        read_data,
        subset if read_data else None,
        snapshots=report.snapshots,
        packs=report.packs,
        packs_read=report.packs_read,
        bytes_read=report.bytes_read,
        problems=len(report.problems),
        detail=f"{first.object}: {first.message}" if first else None,
    )


def record_check(engine: Engine, rec: CheckRecord) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(repository_checks).values(
                site=rec.site,
                started_at=rec.started_at,
                finished_at=rec.finished_at,
                ok=rec.ok,
                read_data=rec.read_data,
                subset_n=rec.subset[0] if rec.subset else None,
                subset_m=rec.subset[1] if rec.subset else None,
                snapshots=rec.snapshots,
                packs=rec.packs,
                packs_read=rec.packs_read,
                bytes_read=rec.bytes_read,
                problems=rec.problems,
                detail=(rec.detail or "")[:1000] or None,
            )
        )


def record_site_check(
    config: Consortium,
    repository_url: str,
    started: datetime,
    report: CheckReport,
    *,
    read_data: bool,
) -> str | None:
    """Record an operator's ``bcpctl check`` of a configured site's repository as the scheduler
    records its own, so /metrics and the alerts see the newest check whoever ran it.

    ``repository_url`` is the opened backend's ``url`` (the form backup runs record too); a
    repository that is no site's is not recorded and ``None`` is returned. A manual
    ``--subset N/M`` is not stored as the slice: the rotation (:func:`last_subset`) stays the
    scheduler's own, which alone guarantees every pack is read once per M checks;
    ``bytes_read`` still says how much the manual check read.
    """
    site = site_of_repository(config).get(repository_url)
    if site is None:
        return None
    rec = report_record(site, started, utcnow(), report, subset=None, read_data=read_data)
    record_check(open_state(config.control_db), rec)
    return site


def latest_checks(engine: Engine, *, read_data: bool = False) -> list[CheckRecord]:
    """The newest check of each site (with ``read_data``: the newest that read pack data)."""
    query = select(func.max(repository_checks.c.id).label("id")).group_by(repository_checks.c.site)
    if read_data:
        query = query.where(repository_checks.c.read_data.is_(True))
    newest = query.subquery()
    with engine.connect() as conn:
        rows = conn.execute(select(repository_checks).join(newest, repository_checks.c.id == newest.c.id)).all()
    return [
        CheckRecord(
            row.site,
            row.started_at,
            row.finished_at,
            row.ok,
            row.read_data,
            (row.subset_n, row.subset_m) if row.subset_n else None,
            row.snapshots,
            row.packs,
            row.packs_read,
            row.bytes_read,
            row.problems,
            row.detail,
        )
        for row in rows
    ]
