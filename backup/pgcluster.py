"""A PostgreSQL cluster restored from a base backup: unpacked, set to recover from the WAL
archive, started, and watched until recovery ends.

The base backup's tar stream is read blob by blob from the repository into ``tarfile``'s
streaming reader, each member vetted first (backup/targuard.py: no link, no absolute name, no
``..``) and extracted with the ``data`` filter besides, while its SHA-256 is taken from the
same bytes and compared with the backup's record. The restored cluster never archives
(``archive_mode = off``): a drill or a restore must not add a second history to the
production archive.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pwd
import shlex
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup.baserecord import BASE_NAME, Tablespace, format_tablespace_map, parse_tablespace_map, recorded_tablespaces
from backup.errors import CorruptObject, HostileSnapshot, VerificationFailed
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.sources import postgres_row_counts, postgres_tool, redact_dsn
from backup.syncbehind import synced_behind
from backup.tablespacemap import place
from backup.targuard import open_dir, refuse_links, remove_unpacked, vetted_members
from backup.tree import Entry, iter_tree
from dc.errors import N_, Message, ProblemFound, UsageError, os_reason


class _BlobStream(io.RawIOBase):
    """The stream a snapshot's file holds, read blob by blob, hashed on the way."""

    def __init__(self, repo: Repository, chunks: list[str], progress: Callable[[int], None] | None) -> None:
        self._blobs: Iterator[bytes] = (repo.read_blob(bytes.fromhex(c)) for c in chunks)
        self._pending = memoryview(b"")
        self.digest = hashlib.sha256()
        self.size = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            blob = next(self._blobs, None)
            if blob is None:
                return 0
            self.digest.update(blob)
            self.size += len(blob)
            if self._progress:
                self._progress(len(blob))
            self._pending = memoryview(blob)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def unpack_base(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    tablespaces: Mapping[int, Path] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Unpack a base backup into the empty directory ``target``; return its size in bytes, verified.

    ``tablespaces``: where each recorded tablespace goes, by OID (backup/tablespacemap.py; by
    default under ``target``): its tar is unpacked there, ``pg_tblspc/<oid>`` links to it, and
    ``tablespace_map``, which PostgreSQL follows when it starts, is rewritten to name it.

    A failed or refused unpack removes what it wrote (the target it made, or the contents of
    the empty one it was given, and the tablespace places' contents): no plaintext is left."""
    spaces = recorded_tablespaces(snapshot.tags, snapshot.short_id)
    placed = dict(tablespaces) if tablespaces is not None else place(spaces, {}, target)
    entries = {e["path"]: e for e in iter_tree(repo.read_blob, snapshot.tree) if e["type"] == "file"}
    if sorted(entries) != sorted([BASE_NAME, *(s.file for s in spaces)]) or set(placed) != {s.oid for s in spaces}:
        raise CorruptObject(
            N_("snapshot {short_id} is not a base backup (it holds no {BASE_NAME} alone)"),
            short_id=snapshot.short_id,
            BASE_NAME=BASE_NAME,
        )
    if target.exists() and any(target.iterdir()):
        raise UsageError(
            N_("{target} is not empty: a cluster is restored into an empty or new directory"), target=target
        )
    existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)
    refuse_links(target, target)
    try:
        return _unpack_into(repo, snapshot, target, spaces, placed, entries, progress)
    except BaseException:
        remove_unpacked(target, existed, [placed[s.oid] for s in spaces])
        raise


def _unpack_into(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    spaces: list[Tablespace],
    placed: Mapping[int, Path],
    entries: Mapping[str, Entry],
    progress: Callable[[int], None] | None,
) -> int:
    target.chmod(0o700)
    size = _unpack_tar(repo, snapshot, entries[BASE_NAME], target, target, progress)
    _check_tablespace_map(target, snapshot, spaces)
    for space in spaces:
        where = placed[space.oid]
        # mapped places were made when they were vetted (tablespacemap.place): re-checked here,
        # right before the write, for a parent swapped for a link since
        top = target if where.is_relative_to(target) else Path(where.anchor)
        refuse_links(top, where)
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        refuse_links(top, where)
        if any(where.iterdir()):
            raise UsageError(N_("{path} exists and is not an empty directory"), path=where)
        size += _unpack_tar(repo, snapshot, entries[space.file], top, where, progress)
        link = target / "pg_tblspc" / str(space.oid)
        if link.exists() or link.is_symlink():
            raise HostileSnapshot(
                N_("base backup {short_id} holds {entry} itself: a restore links it"),
                short_id=snapshot.short_id,
                entry=f"pg_tblspc/{space.oid}",
            )
        link.symlink_to(where)
    if spaces:
        (target / "tablespace_map").write_text(
            format_tablespace_map({oid: str(path) for oid, path in placed.items()}), encoding="utf-8"
        )
    return size


#: what a member laid where another lies (a file over a directory, a path through a file) raises
_CLASHES = {errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY, errno.ELOOP}


def _unpack_tar(
    repo: Repository,
    snapshot: Snapshot,
    entry: Entry,
    top: Path,
    into: Path,
    progress: Callable[[int], None] | None,
) -> int:
    """``entry``'s tar unpacked into ``into``, reached from ``top`` through no link: the directory
    is opened once, component by component, and written through that descriptor
    (``/proc/self/fd``), so a parent swapped for a link during a long unpack is not followed."""
    stream = _BlobStream(repo, list(entry.get("chunks", ())), progress)
    reader = io.BufferedReader(stream, 1 << 20)
    fd = open_dir(top, into)
    via = f"/proc/self/fd/{fd}"
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            members = synced_behind(vetted_members(tar, snapshot.short_id), Path(via))
            tar.extractall(via, members=members, filter="data")
        # the padding after the end-of-archive blocks (a tar's last record) is hashed too
        while reader.read(1 << 20):
            pass
    except tarfile.TarError as exc:
        raise CorruptObject(
            N_("base backup {short_id} is not a readable tar stream: {exc}"),
            short_id=snapshot.short_id,
            exc=str(exc).replace(via, str(into)),
        ) from None
    except OSError as exc:
        if isinstance(exc.filename, str) and (exc.filename == via or exc.filename.startswith(via + "/")):
            exc.filename = str(into) + exc.filename[len(via) :]
        if exc.errno not in _CLASHES:
            raise  # the disk's condition (full, read-only): one line from the CLI
        raise CorruptObject(
            N_("base backup {short_id} holds members that cannot lie together at {path}: {reason}"),
            short_id=snapshot.short_id,
            path=exc.filename,
            reason=os_reason(exc),
        ) from None
    finally:
        os.close(fd)
    if stream.digest.hexdigest() != entry.get("sha256") or stream.size != entry.get("size"):
        raise VerificationFailed(
            N_("base backup {short_id} differs from what the backup recorded"), short_id=snapshot.short_id
        )
    return stream.size


def _check_tablespace_map(target: Path, snapshot: Snapshot, spaces: list[Tablespace]) -> None:
    """PostgreSQL links each ``tablespace_map`` entry's absolute path into ``pg_tblspc`` when it
    starts: the map must name exactly the tablespaces the backup recorded (and stored), which
    the restore then places itself; any other entry would have it write where the primary's
    tablespaces live."""
    mapping = target / "tablespace_map"
    text = mapping.read_text(errors="replace") if mapping.is_file() and not mapping.is_symlink() else ""
    try:
        named = parse_tablespace_map(text)
    except ValueError:
        named = {0: text.strip()}
    if mapping.is_symlink() or set(named) != {s.oid for s in spaces}:
        extra = {oid: path for oid, path in named.items() if oid not in {s.oid for s in spaces}}
        first = next(iter(extra.items()), None)
        raise HostileSnapshot(
            N_("base backup {short_id} maps tablespace {entry}: a restore never writes outside its target"),
            short_id=snapshot.short_id,
            entry=f"{first[0]} {first[1]}"[:300] if first else "tablespace_map",
        )


@dataclass(frozen=True)
class RecoverySettings:
    """What ``postgresql.auto.conf`` gets: the archive to read and where to stop."""

    restore_command: str
    #: ``recovery_target_time`` / ``recovery_target_lsn`` value, or none for the end of the archive
    target_time: str | None = None
    target_lsn: str | None = None

    def lines(self) -> list[str]:
        found = {
            "restore_command": self.restore_command,
            "recovery_target_action": "promote",
            "recovery_target_timeline": "latest",
            "archive_mode": "off",
        }
        if self.target_time:
            found["recovery_target_time"] = self.target_time
        if self.target_lsn:
            found["recovery_target_lsn"] = self.target_lsn
        return [f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n" for name, value in found.items()]


def configure_recovery(
    datadir: Path, settings: RecoverySettings, owner: str | None, *, also: Sequence[Path] = ()
) -> None:
    """Recovery settings into ``datadir``; it and the directories ``also`` (tablespaces placed
    outside it) handed to ``owner``."""
    with (datadir / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.write("# set by bcpctl restore: recover from the WAL archive, then promote\n")
        conf.writelines(settings.lines())
    (datadir / "recovery.signal").write_bytes(b"")
    (datadir / "pg_wal" / "archive_status").mkdir(parents=True, exist_ok=True)
    if owner is not None:
        account = pwd.getpwnam(owner)
        for path in [p for top in (datadir, *also) for p in (top, *top.rglob("*"))]:
            os.lchown(path, account.pw_uid, account.pw_gid)


#: how often a restore asks whether recovery has ended (one query on an open connection)
_POLL = 0.02


@dataclass
class RestoredCluster:
    datadir: Path
    port: int
    owner: str | None

    def _as_owner(self, argv: list[str]) -> list[str]:
        if self.owner is None or (os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name == self.owner):
            return argv
        return (
            ["runuser", "-u", self.owner, "--", *argv]
            if os.geteuid() == 0
            else ["sudo", "-n", "-u", self.owner, "--", *argv]
        )

    @property
    def log(self) -> Path:
        return self.datadir / "bcpctl-restore.log"

    def start(self, timeout: float) -> None:
        """Start, and return once it accepts connections: consistent and replaying, or already promoted."""
        options = f"-p {self.port} -k {shlex.quote(str(self.datadir))} -c listen_addresses=127.0.0.1"
        wait = ["-w", "-t", str(max(1, int(timeout)))]
        argv = self._as_owner(
            [postgres_tool("pg_ctl"), "-D", str(self.datadir), "-o", options, "-l", str(self.log), *wait, "start"]
        )
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout + 60)
        if done.returncode != 0:
            raise ProblemFound(
                N_("the restored cluster did not start: {detail}"), detail=self.log_tail() or done.stderr.strip()
            )

    def running(self) -> bool:
        argv = self._as_owner([postgres_tool("pg_ctl"), "-D", str(self.datadir), "status"])
        return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        argv = self._as_owner([postgres_tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])
        subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
        return (fatal or lines or [""])[-1].strip()

    def wait_promoted(self, conninfo: str, timeout: float) -> None:
        """Until recovery has reached its target and the cluster was promoted (or died trying).

        One connection asks every few milliseconds: a connection per question cost a server
        process each, so it was asked five times a second, and the restore waited up to 0.2 s
        longer than recovery.
        """
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
                    while time.monotonic() < deadline:
                        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                        if row is not None and not row[0]:
                            return
                        time.sleep(_POLL)
            except psycopg.OperationalError:
                if not self.running():
                    raise ProblemFound(
                        N_("recovery stopped: {detail}"), detail=self.log_tail() or Message(N_("the server exited"))
                    ) from None
            time.sleep(0.2)  # not accepting connections (yet): each try costs a pg_ctl status
        raise ProblemFound(
            N_("recovery did not finish within {timeout:.0f} s: {detail}"), timeout=timeout, detail=self.log_tail()
        )


def stop_clusters_in(root: Path) -> None:
    """Stop every postmaster whose data directory is ``root`` or right below it, before ``root`` is
    removed: a process that died mid-restore leaves its scratch cluster running, and deleting the
    files under a running postmaster frees neither its memory nor its port.

    Each is stopped as the account that owns its data directory (``pg_ctl`` refuses any other);
    ``immediate``: a scratch cluster's data is thrown away anyway.
    """
    for pidfile in (root / "postmaster.pid", *sorted(root.glob("*/postmaster.pid"))):
        if pidfile.is_symlink() or not pidfile.is_file():
            continue
        datadir = pidfile.parent
        try:
            owner: str | None = pwd.getpwuid(datadir.stat().st_uid).pw_name
        except KeyError:
            owner = None
        RestoredCluster(datadir, 0, owner).stop("immediate")
        if pidfile.exists() and _postmaster_alive(pidfile):
            raise OSError(f"the PostgreSQL server in {datadir} did not stop")


def _postmaster_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except PermissionError:
        return True  # another account's live process
    except (OSError, ValueError, IndexError):
        return False
    return True


def copy_database(source: str, target: str) -> dict[str, int]:
    """``pg_dump`` of ``source`` into ``pg_restore --single-transaction`` at ``target`` (a failure
    leaves the target as it was); return the target's row counts.

    Every object lands in the target's default tablespace: the recovered cluster's tablespaces
    are its own, and one of the same name on the target server may be the primary's."""
    import psycopg

    dump = subprocess.Popen(
        [postgres_tool("pg_dump"), "--format=custom", "-Z0", "--no-sync", "-d", source],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    restore = subprocess.run(
        [postgres_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
         "--no-tablespaces", "-d", target],
        stdin=dump.stdout, capture_output=True, text=True,
    )  # fmt: skip
    if dump.stdout is not None:
        dump.stdout.close()
    dumped = dump.wait()
    dump_err = dump.stderr.read().decode(errors="replace").strip() if dump.stderr is not None else ""
    if dumped != 0:
        raise ProblemFound(
            N_("pg_dump of the recovered database failed: {dump_err}"),
            dump_err=dump_err.splitlines()[-1:] or Message(N_("no output")),
        )
    if restore.returncode != 0:
        detail = next((line for line in restore.stderr.splitlines() if "error" in line.lower()), restore.stderr.strip())
        raise ProblemFound(
            N_("pg_restore into {target} failed (nothing committed): {detail}"),
            target=redact_dsn(target),
            detail=detail,
        )
    with psycopg.connect(target, autocommit=True, connect_timeout=15) as conn, conn.cursor() as cur:
        return postgres_row_counts(cur)
