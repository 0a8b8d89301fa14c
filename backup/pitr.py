"""Recovery of a ``postgres-wal`` system to any moment: a base backup plus WAL replay.

The newest base backup that ended before the target is unpacked (:mod:`backup.pgcluster`),
PostgreSQL replays archived WAL through ``bcpctl wal get`` until ``recovery_target_time``
(or ``_lsn``, or the end of the archive) and promotes; bcpctl then runs the system's smoke
query and counts every table's rows. The time this took is the system's RTO as measured:
base restore plus replay, reported apart.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup.baserecord import TAG_END, TAG_SEGMENT_SIZE, TAG_START, TAG_STOP, recorded_tablespaces
from backup.errors import VerificationFailed
from backup.pgcluster import RecoverySettings, RestoredCluster, configure_recovery, unpack_base
from backup.pitrscratch import pitr_scratch, sweep_scratch
from backup.snapshot import Snapshot, list_snapshots
from backup.sources import postgres_row_counts, redact_dsn
from backup.tablespacemap import place
from backup.walarchive import WalNotFound, fetch
from backup.walcheck import base_backups, first_needed
from backup.walfeed import ABSENT, WalFeed
from backup.walseq import DEFAULT_SEGMENT_SIZE, format_lsn, parse_lsn, segment_name
from backup.waltablespace import REFUSED, creations, previous_name, refusal, withheld
from dc.clock import JST, jst_text, utcnow
from dc.errors import N_, ProblemFound, UsageError
from dc.failpoint import failpoint

if TYPE_CHECKING:
    from backup.repository import Repository
    from dc.config import Consortium

_ZONES = {"JST": JST, "UTC": UTC}
_ZONE_SUFFIX = re.compile(r"^(.*\S)\s*(JST|UTC)$")


def parse_moment(text: str) -> datetime:
    """``2026-12-06 03:14:15 JST``, ``…UTC`` or ISO 8601 with an offset; never a time without a zone."""
    raw = text.strip()
    zone = None
    if match := _ZONE_SUFFIX.match(raw):
        raw, zone = match[1], _ZONES[match[2]]
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            N_("'{text}' is not a time (e.g. '2026-12-06 03:14:15 JST' or 2026-12-06T03:14:15+09:00)"), text=text
        ) from None
    if zone is not None:
        if when.tzinfo is not None:
            raise UsageError(N_("'{text}' gives two zones"), text=text)
        when = when.replace(tzinfo=zone)
    if when.tzinfo is None:
        raise UsageError(N_("'{text}' needs a zone (JST, UTC or an offset such as +09:00)"), text=text)
    return when


@dataclass(frozen=True)
class RecoveryTarget:
    """Where replay stops: a moment, a WAL position, or the end of the archive."""

    time: datetime | None = None
    lsn: int | None = None

    @property
    def latest(self) -> bool:
        return self.time is None and self.lsn is None

    def describe(self) -> str:
        if self.time is not None:
            return self.time.isoformat()
        return format_lsn(self.lsn) if self.lsn is not None else "latest"

    def shown(self) -> str:
        """The target as a person reads it: a moment in JST (:meth:`describe` is the record's ISO 8601)."""
        return jst_text(self.time, seconds=True) if self.time is not None else self.describe()


def _base_end(base: Snapshot) -> datetime:
    return datetime.fromisoformat(base.tags.get(TAG_END, base.time.isoformat()))


def check_moment(target: RecoveryTarget, now: datetime) -> None:
    """Refuse a target time after ``now`` (pure): no WAL can reach it, and PostgreSQL would only
    say so ("recovery ended before target") after the whole archive was replayed."""
    if target.time is not None and target.time > now:
        raise UsageError(
            N_("--to-time {time} is in the future (now {now}): use --to-latest for the newest state the archive holds"),
            time=jst_text(target.time, seconds=True),
            now=jst_text(now, seconds=True),
        )


def choose_base(bases: list[Snapshot], target: RecoveryTarget) -> Snapshot:
    """The newest base backup recovery can start from for ``target`` (pure: no I/O)."""
    usable = bases
    if target.time is not None:
        moment = target.time
        usable = [b for b in bases if _base_end(b) <= moment]
        if bases and not usable:
            # The recoverable window starts where the oldest kept base backup ends: the invocation
            # asks for what this archive can never hold.
            oldest = min(_base_end(b) for b in bases)
            raise UsageError(
                N_(
                    "--to-time {moment} is before the oldest base backup of {system} (ended {oldest}): nothing "
                    "can be recovered from before it"
                ),
                moment=jst_text(moment, seconds=True),
                system=bases[0].system,
                oldest=jst_text(oldest, seconds=True),
            )
    elif target.lsn is not None:
        lsn = target.lsn
        usable = [b for b in bases if parse_lsn(b.tags[TAG_STOP]) <= lsn]
    if not usable:
        raise ProblemFound(N_("no base backup ended before {target}: nothing to recover from"), target=target.shown())
    return max(usable, key=lambda b: (_base_end(b), b.id))


@dataclass
class PitrResult:
    system: str
    base_snapshot: str
    base_end: str
    target: str
    target_dir: str
    port: int
    #: commit time of the last transaction replayed (ISO 8601), none if replay applied none
    recovered_to: str | None
    lsn: str
    tables: dict[str, int] = field(default_factory=dict)
    smoke: list[Any] | None = None
    base_seconds: float = 0.0
    replay_seconds: float = 0.0
    running: bool = False
    #: where each tablespace of the base backup was restored, by OID
    tablespaces: dict[str, str] = field(default_factory=dict)

    @property
    def rto_seconds(self) -> float:
        return round(self.base_seconds + self.replay_seconds, 3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: in the restored data directory (PostgreSQL runs restore_command there): the restore's feed
#: (backup/walfeed.py) fetches segments into it during replay; removed once promoted
PREFETCH_SPOOL = "bcpctl-prefetch"


def restore_command(config: Consortium, config_path: Path, system_id: str, site: str, since: int = 0) -> str:
    """Take the file from the spool the restore feeds with a rename; ``wal get`` when it is not there.

    A spooled file was authenticated and hash-checked by the feed and appeared in the spool whole
    (renamed into place), so handing it over is one ``mv`` in the data directory: no process of
    bcpctl per replayed segment. ``mv`` within one filesystem is a rename, atomic; should
    ``pg_wal`` sit on another filesystem, ``mv`` copies and exits non-zero if that fails, and
    PostgreSQL reads ``%p`` only after the command succeeded, so a partial copy is never used
    (``wal get`` writes it afresh). A file the feed marked absent (the next timeline's history,
    backup/walfeed.py) is "not in the archive" (exit 1) at once. ``wal get`` answers everything
    else: other history files, segments the feed has not reached, the end of the archive.

    Neither hands over a segment that creates a tablespace at or after ``since`` (the base
    backup's start; backup/waltablespace.py): it leaves ``%f.refused`` in the spool and answers
    "not in the archive". Recovery then ends there: a target time or position it had not yet
    reached makes PostgreSQL stop with an error, and :func:`restore_to` refuses a restore to
    the latest state that ended at a withheld segment. It is not a crash of the command (exit
    above 125), because PostgreSQL's WAL prefetch asks for segments ahead of the replay, and a
    recovery whose target lies before the tablespace must still succeed.
    """
    wal = config.system(system_id).source.wal_command or "bcpctl wal"
    spool = PREFETCH_SPOOL
    return (
        f"mv -f {spool}/%f %p 2>/dev/null || {{ test ! -e {spool}/%f{ABSENT} && test ! -e {spool}/%f{REFUSED} && "
        f"{wal} get %f %p --system {shlex.quote(system_id)} --site {shlex.quote(site)}"
        f" --config {shlex.quote(str(config_path))} --spool {spool} --refuse-tablespaces-from {format_lsn(since)}; }}"
    )


def restore_to(
    config: Consortium,
    config_path: Path,
    system_id: str,
    target: RecoveryTarget,
    target_dir: Path,
    *,
    port: int | None = None,
    keep_running: bool = False,
    timeout: float = 3600,
    site: str | None = None,
    now: datetime | None = None,
    survivors: Sequence[Path] = (),
    tablespace_map: Mapping[str, str] | None = None,
) -> PitrResult:
    """Restore ``system_id`` into ``target_dir`` as it was at ``target``, start it, verify it.

    ``tablespace_map``: where the base backup's tablespaces go (``OID`` or name to a path,
    backup/tablespacemap.py); the others under ``target_dir``, never at the primary's paths.

    ``site``: whose repository holds the base backups and WAL (default: the site bcpctl runs at).
    ``now``: the clock a target time is judged against (default: the system clock).
    ``survivors``: vetted WAL segment files (named as segments) laid into ``pg_wal``: PostgreSQL
    reads ``pg_wal`` for what the archive lacks, so replay runs on past the archive's end.
    """
    from psycopg.conninfo import make_conninfo

    from backup.waljobs import wal_repository, wal_system
    from dc.config import local_site

    check_moment(target, now or utcnow())
    wal_system(config, system_id)
    system = config.system(system_id)
    owner = system.source.run_as
    if owner is None and _is_root():
        raise UsageError(
            N_("PostgreSQL does not run as root: set systems.{system_id}.source.run_as"), system_id=system_id
        )
    site = site or local_site(config)
    started = time.monotonic()
    # as the restore's wal get opens it: with the site's key file where one is configured (it
    # opens the same master key as the passphrase, backup/keyfile.py), not the passphrase's
    # Argon2id (a fifth of a second of CPU before anything is restored)
    with wal_repository(config, config_path.parent, site, sync=True) as repo:
        base = choose_base(base_backups(list_snapshots(repo, system=system_id), system_id), target)
        since = parse_lsn(base.tags[TAG_START])
        check_survivors(system_id, survivors, since, lambda name: _archived(repo, system_id, name))
        spaces = place(recorded_tablespaces(base.tags, base.short_id), tablespace_map or {}, target_dir)
        unpack_base(repo, base, target_dir, tablespaces=spaces)
        for segment in survivors:
            shutil.copyfile(segment, target_dir / "pg_wal" / segment.name)
        settings = RecoverySettings(
            restore_command(config, config_path, system_id, site, since),
            target_time=target.time.isoformat() if target.time else None,
            target_lsn=format_lsn(target.lsn) if target.lsn is not None else None,
        )
        configure_recovery(target_dir, settings, owner, also=list(spaces.values()))
        base_seconds = round(time.monotonic() - started, 3)
        cluster = RestoredCluster(target_dir, port or free_port(), owner)
        conninfo = make_conninfo(system.source.dsn or "", host="127.0.0.1", port=str(cluster.port))
        replay_started = time.monotonic()
        first = first_needed(base)
        first_name = segment_name(
            first.timeline, first.segno, int(base.tags.get(TAG_SEGMENT_SIZE, DEFAULT_SEGMENT_SIZE))
        )
        # the repository stays open while PostgreSQL replays: the feed fetches ahead of it
        with WalFeed(repo, system_id, first_name, target_dir / PREFETCH_SPOOL, owner=owner, since=since) as feed:
            try:
                try:
                    cluster.start(timeout)
                finally:
                    feed.started()
                cluster.wait_promoted(conninfo, timeout)
                # the end of a recovery to the latest state may be a withheld segment, not the archive's end
                if target.latest and (creation := withheld(target_dir / PREFETCH_SPOOL)) is not None:
                    raise refusal(system_id, creation)
            except BaseException as exc:
                cluster.stop()
                creation = withheld(target_dir / PREFETCH_SPOOL)
                if creation is not None and isinstance(exc, ProblemFound):
                    raise refusal(system_id, creation) from None
                raise
    try:
        shutil.rmtree(target_dir / PREFETCH_SPOOL, ignore_errors=True)
        replay_seconds = round(time.monotonic() - replay_started, 3)
        result = PitrResult(
            system_id, base.id, base.tags.get(TAG_END, base.time.isoformat()), target.describe(), str(target_dir),
            cluster.port, None, "", base_seconds=base_seconds, replay_seconds=replay_seconds,
        )  # fmt: skip
        result.tablespaces = {str(oid): str(path) for oid, path in sorted(spaces.items())}
        _verify(conninfo, system.smoke, result)
        result.running = keep_running
        return result
    finally:
        if not keep_running:
            cluster.stop()


def check_survivors(
    system_id: str, survivors: Sequence[Path], since: int, archived: Callable[[str], bytes | None]
) -> None:
    """Refuse surviving segments that create a tablespace: laid into ``pg_wal``, they are replayed
    without passing through restore_command's check (backup/waltablespace.py). A survivor is
    read with its predecessor, another survivor or else the archive's copy (``archived``)."""
    held = {segment.name: segment for segment in survivors}
    for name in sorted(held):
        data = held[name].read_bytes()
        before = previous_name(name, len(data) or DEFAULT_SEGMENT_SIZE)
        previous = held[before].read_bytes() if before in held else archived(before) if before else None
        if found := creations(name, data, previous, since=since):
            raise refusal(system_id, found[0])


def restore_to_database(
    config: Consortium,
    config_path: Path,
    system_id: str,
    target: RecoveryTarget,
    target_dsn: str,
    *,
    timeout: float = 3600,
    site: str | None = None,
    now: datetime | None = None,
) -> PitrResult:
    """Recover ``system_id`` to ``target`` in a private cluster, then copy its database into
    ``target_dsn`` (``pg_dump | pg_restore`` in one transaction) and compare every table's rows.

    PostgreSQL replays WAL into a whole cluster only, so an existing server (a drill sandbox,
    the offsite's production server) receives the recovered database logically.
    """
    from psycopg.conninfo import make_conninfo

    from backup.pgcluster import RestoredCluster, copy_database

    now = now or utcnow()
    check_moment(target, now)
    system = config.system(system_id)
    sweep_scratch()  # what restores killed before this one left running
    with pitr_scratch() as scratch:
        result = restore_to(
            config,
            config_path,
            system_id,
            target,
            scratch / "data",
            keep_running=True,
            timeout=timeout,
            site=site,
            now=now,
        )
        cluster = RestoredCluster(scratch / "data", result.port, system.source.run_as)
        failpoint("pitr.scratch-running")
        try:
            source = make_conninfo(system.source.dsn or "", host="127.0.0.1", port=str(result.port))
            copied = copy_database(source, target_dsn)
        finally:
            cluster.stop()
        mismatches = {t: (n, copied.get(t)) for t, n in result.tables.items() if copied.get(t) != n}
        if mismatches:
            table, (want, got) = next(iter(mismatches.items()))
            raise VerificationFailed(
                N_("{table} has {got} rows in {target_dsn}, the recovered cluster {want}"),
                table=table,
                got=got,
                target_dsn=redact_dsn(target_dsn),
                want=want,
            )
        # the tablespaces were in the scratch cluster, removed with it
        result.target_dir, result.running, result.tablespaces = redact_dsn(target_dsn), False, {}
        return result


def _verify(conninfo: str, smoke: str | None, result: PitrResult) -> None:
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=15, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_last_xact_replay_timestamp(), pg_current_wal_lsn()")
            row = cur.fetchone()
            if row is not None:
                result.recovered_to = row[0].isoformat() if row[0] is not None else None
                result.lsn = str(row[1])
            result.tables = postgres_row_counts(cur)
            if smoke:
                cur.execute(smoke)
                first = cur.fetchone() if cur.description else None
                result.smoke = [str(v) for v in first] if first is not None else []
    except psycopg.Error as exc:
        raise ProblemFound(
            N_("the restored cluster at {conninfo} fails verification: {exc}"),
            conninfo=redact_dsn(conninfo),
            exc=str(exc).strip().splitlines()[0],
        ) from None


def _archived(repo: Repository, system_id: str, name: str) -> bytes | None:
    try:
        return fetch(repo, system_id, name)[1]
    except WalNotFound:
        return None


def _is_root() -> bool:
    return os.geteuid() == 0
