"""What a failover lost of a ``postgres-wal`` system, and the worklist to type it in again.

The offsite recovered the base backup and the WAL it held; whatever the primary committed
after that is gone from the database. Where the primary's WAL survives elsewhere (the
system's ``source.surviving_wal``: a synchronous standby's archive, a copy of ``pg_wal``), two
scratch clusters are recovered from the same base backup: one exactly as the failover did,
one continued through the vetted survivors (:mod:`backup.walsurvivors`). ``pg_waldump`` over
the survivors gives the committed transactions in between, with their commit times; the rows
each wrote are those whose ``xmin`` is one of them in the longer recovery (inserted or
changed, told apart by the primary key in the shorter one), and the rows of the shorter one
whose key is gone (deleted, dated by the delete record at their ``ctid``: both clusters are
physical copies). The configured tables (``reentry``) name the 業務 and the town column.
When nothing usable survived, the result says exactly which interval is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backup.pitr import PitrResult, RecoveryTarget, restore_to
from backup.walseq import format_lsn, parse_lsn, parse_segment, segment_name
from backup.walsurvivors import Cluster, Skipped, Survivors, fetch_remote, vet_survivors
from dc.clock import utcnow
from dc.errors import N_, BcpError, Message, ProblemFound, UsageError, message_of
from failover.lostrows import LostRow, table_rows

if TYPE_CHECKING:
    from dc.config import Consortium


@dataclass
class LostTransaction:
    xid: int
    lsn: str
    committed_at: str
    tables: list[str] = field(default_factory=list)


@dataclass
class LostWork:
    system: str
    tenant: str
    business: str
    #: the last transaction the offsite's WAL recovered (ISO 8601), and where its replay ended
    recovered_to: str | None
    recovered_lsn: str
    #: the declared disaster (or the time of the run): the end of every lost interval
    declared_at: str
    #: the last transaction the survivors recovered, and where their replay ended (none: nothing survived)
    survived_to: str | None = None
    survived_lsn: str | None = None
    transactions: list[LostTransaction] = field(default_factory=list)
    rows: list[LostRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: surviving segments that passed every check but PostgreSQL would not replay (see warnings)
    unreplayed: int = 0


def _replayed_timeline(datadir: Path) -> int:
    """The timeline the offsite's replay ran on: the parent the promotion's history file names."""
    try:
        histories = sorted(p for p in (datadir / "pg_wal").iterdir() if p.name.endswith(".history"))
        lines = [ln for ln in histories[-1].read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        return int(lines[-1].split()[0])
    except (OSError, IndexError, ValueError):
        raise ProblemFound(
            N_("the recovered cluster in {datadir} wrote no readable timeline history"), datadir=datadir
        ) from None


def _local_places(
    config: Consortium, site: str | None, places: Sequence[str], into: Path, seg_size: int
) -> tuple[list[Path], list[Skipped]]:
    """Local directories as they are; a remote place (``sftp://``, ``s3://``) fetched into ``into``
    first, its SFTP host key pinned by the site's ``known_hosts``."""
    from dc.config import local_site

    local, skipped = [], []
    known_hosts = config.sites[site or local_site(config)].known_hosts
    for n, place in enumerate(places):
        if "://" in place and not place.startswith("file://"):
            skipped += fetch_remote(place, into / str(n), seg_size, known_hosts)
            local.append(into / str(n))
        else:
            local.append(Path(place.removeprefix("file://")))
    return local, skipped


def _conninfo(config: Consortium, system_id: str, port: int) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(config.system(system_id).source.dsn or "", host="127.0.0.1", port=str(port))


def _replay_state(conninfo: str) -> tuple[int, int, int]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=15) as conn:
        row = conn.execute(
            "SELECT pg_last_wal_replay_lsn()::text, (SELECT system_identifier FROM pg_control_system()),"
            " current_setting('wal_segment_size')::text"
        ).fetchone()
    if row is None or row[0] is None:
        raise ProblemFound(N_("the recovered cluster replayed no WAL"))
    size = str(row[2]).upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
    return parse_lsn(row[0]), int(row[1]), int(size.rstrip("KMG")) * scale


def _fetch_end_segment(
    config: Consortium, config_path: Path, system_id: str, site: str | None, name: str, spool: Path
) -> None:
    """The archive's segment holding the offsite's end, beside the survivors: pg_waldump needs
    the record that runs across into the first survivor."""
    from backup.jobs import site_repository
    from backup.walarchive import get
    from dc.config import local_site

    if (spool / name).exists():
        return
    with site_repository(config, site or local_site(config), config_path.parent) as repo:
        get(repo, system_id, name, spool / name)


def lost_work(
    config: Consortium,
    config_path: Path,
    system_id: str,
    scratch: Path,
    *,
    surviving: Sequence[str] | None = None,
    site: str | None = None,
    declared_at: datetime | None = None,
    now: datetime | None = None,
    timeout: float = 3600,
) -> LostWork:
    """What the failover of ``system_id`` lost, from the offsite's base backup and WAL and the
    surviving WAL (``surviving``, default the system's ``source.surviving_wal``), its scratch
    clusters recovered in the empty directory ``scratch`` (:func:`failover.lostscratch.lost_scratch`)."""
    from backup.pgcluster import RestoredCluster
    from backup.waljobs import wal_system

    wal_system(config, system_id)
    system = config.system(system_id)
    places = list(system.source.surviving_wal if surviving is None else surviving)
    now = now or utcnow()
    declared = declared_at or now
    if declared.tzinfo is None:
        raise UsageError(N_("--declared-at needs a time zone (e.g. 2026-12-06T03:14:15+09:00)"))
    running: list[RestoredCluster] = []

    def recover(name: str, survivors: Sequence[Path] = ()) -> PitrResult:
        # restore_to leaves a kept-running cluster up when its replay fails: stopped here, by its directory
        running.append(RestoredCluster(scratch / name, 0, system.source.run_as))
        result = restore_to(
            config,
            config_path,
            system_id,
            RecoveryTarget(),
            scratch / name,
            keep_running=True,
            timeout=timeout,
            site=site,
            now=now,
            survivors=survivors,
        )
        return result

    try:
        offsite = recover("offsite")
        a_info = _conninfo(config, system_id, offsite.port)
        a_end, sysid, seg_size = _replay_state(a_info)
        work = LostWork(
            system_id, system.tenant, system.business, offsite.recovered_to, format_lsn(a_end), declared.isoformat()
        )
        timeline = _replayed_timeline(scratch / "offsite")
        spool = scratch / "spool"
        spool.mkdir()
        local, fetched = _local_places(config, site, places, scratch / "fetched", seg_size)
        found = vet_survivors(local, spool, Cluster(sysid, timeline, seg_size), a_end)
        work.skipped, work.missing = fetched + found.skipped, found.missing
        if not found.usable:
            if places and not found.skipped:
                work.warnings.append(
                    Message(
                        N_("no WAL segment newer than the offsite's in {places}"), places=", ".join(map(str, places))
                    )
                )
            return work
        try:
            longer = recover("survivors", found.usable)
        except BcpError as exc:
            # WAL that passes every header check can still be hostile or broken enough to stop
            # PostgreSQL: the report then says what is lost instead of failing
            work.warnings.append(
                Message(N_("the surviving WAL could not be replayed: {reason}"), reason=message_of(exc))
            )
            work.unreplayed = len(found.usable)
            return work
        b_info = _conninfo(config, system_id, longer.port)
        b_end = _replay_state(b_info)[0]
        work.survived_to, work.survived_lsn = longer.recovered_to or offsite.recovered_to, format_lsn(b_end)
        last = found.usable[-1].name
        if b_end // seg_size < parse_segment(last, seg_size).segno:
            # PostgreSQL ends replay at the first record whose checksum fails: what follows is unreadable
            stopped = segment_name(timeline, b_end // seg_size, seg_size)
            work.warnings.append(
                Message(
                    N_(
                        "replay of the surviving WAL stopped at {lsn} in {stopped} (a damaged "
                        "record): the survivors after it, up to {last}, could not be read"
                    ),
                    lsn=format_lsn(b_end),
                    stopped=stopped,
                    last=last,
                )
            )
        _list_gap(
            config, config_path, system_id, site, work, found, spool, (timeline, seg_size, a_end, b_end), a_info, b_info
        )
        return work
    finally:
        for cluster in running:
            cluster.stop()  # pg_ctl stop: quick and harmless where nothing runs


def _list_gap(
    config: Consortium,
    config_path: Path,
    system_id: str,
    site: str | None,
    work: LostWork,
    found: Survivors,
    spool: Path,
    wal: tuple[int, int, int, int],
    a_info: str,
    b_info: str,
) -> None:
    import psycopg

    from backup.waldump import read_stretch

    timeline, seg_size, a_end, b_end = wal
    start = a_end
    first = parse_segment(found.usable[0].name, seg_size).segno
    if a_end % seg_size and a_end // seg_size < first:
        name = segment_name(timeline, a_end // seg_size, seg_size)
        try:
            _fetch_end_segment(config, config_path, system_id, site, name, spool)
        except BcpError as exc:
            # without it, a commit record running across into the first survivor goes unlisted
            start = first * seg_size
            work.warnings.append(
                Message(
                    N_("{name} could not be read from the archive ({reason}): listing from {usable}"),
                    name=name,
                    reason=message_of(exc),
                    usable=found.usable[0].name,
                )
            )
    stretch = read_stretch(spool, timeline, start, b_end)
    if stretch.stopped:
        work.warnings.append(
            Message(N_("pg_waldump stopped early, the list may be short: {stopped}"), stopped=stretch.stopped)
        )
    system = config.system(system_id)
    with psycopg.connect(a_info, autocommit=True) as a, psycopg.connect(b_info, autocommit=True) as b:
        names = {
            int(r[0]): str(r[1])
            for r in b.execute(
                "SELECT c.relfilenode, n.nspname || '.' || c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relfilenode <> 0"
            ).fetchall()
        }
        for tx in stretch.committed:
            work.transactions.append(
                LostTransaction(
                    tx.xid, format_lsn(tx.lsn), tx.time.isoformat(), sorted(names.get(r, str(r)) for r in tx.relations)
                )
            )
        for table, how in system.reentry.items():
            rows, problems = table_rows(a, b, table, how, stretch, _towns(config, system.tenant))
            work.rows += rows
            work.warnings += problems
    work.rows.sort(key=lambda r: (r.town, r.business, r.committed_at or "", r.table))


def _towns(config: Consortium, own: str) -> dict[str, tuple[str, str]]:
    """Town column values (a tenant's lg_code or id) → (tenant id, the town's name); ``""`` → the
    system's own tenant. A value that names no tenant is listed as it is, under no tenant."""
    towns = {"": (own, config.tenants[own].name)}
    for tenant_id, tenant in config.tenants.items():
        towns[tenant_id] = towns[tenant.lg_code] = (tenant_id, tenant.name)
    return towns
