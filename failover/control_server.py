"""A site's PostgreSQL control server as the streaming standby needs it: its state, its role, its data.

A standby is made of (PostgreSQL docs, "Log-Shipping Standby Servers"): a physical replication
slot on the primary (``bcpctl_<site>``), so WAL the standby has not received is never removed;
a data directory that is a copy of the primary's cluster — taken with ``pg_basebackup``, or an
earlier copy brought back to it with ``pg_rewind``; ``standby.signal``; and
``primary_conninfo``/``primary_slot_name``. bcpctl sets those two with ``ALTER SYSTEM`` on the
running standby (both reload without a restart, and ALTER SYSTEM is allowed during recovery),
so whatever a copied configuration said about an earlier primary is replaced.

Everything but the data directory goes through SQL on the site's ``control_db`` connection, so
a controller reaches it over the network. ``pg_basebackup``, ``pg_rewind`` and ``pg_controldata``
work on the data directory: they run on the machine bcpctl runs on, as ``control_server.run_as``;
the server starts and stops with the site's own commands (``control_server.start|stop``).

pg_rewind can only rewind a server that ran with ``wal_log_hints = on`` (or data checksums) and
``full_page_writes = on``: :meth:`ControlServer.settings_problems` asks for them before a
standby is set up, because the primary must be rewindable when it comes back after a failover.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dc.config import Consortium
from dc.config import ControlServer as ServerSpec
from dc.errors import N_, Message, message_of
from failover.controlplane import ControlPlaneError, display_url, state_url

if TYPE_CHECKING:
    import psycopg

SLOT_PREFIX = "bcpctl_"
#: how often a wait polls the server
POLL_SECONDS = 0.2


def slot_name(site: str) -> str:
    """The replication slot (and ``application_name``) of the standby at ``site``."""
    return SLOT_PREFIX + re.sub(r"[^a-z0-9_]", "_", site.lower())


def lsn(text: str | None) -> int | None:
    """A WAL position (``16/B374D848``) as a number, for comparing."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def libpq_url(url: str) -> str:
    """The control database URL as libpq takes it (SQLAlchemy's driver suffix removed)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else url


@dataclass(frozen=True)
class ServerState:
    site: str
    answers: bool
    problem: str | None = None
    in_recovery: bool = False
    #: new transactions are read-only (a fence)
    read_only: bool = False
    system_id: str | None = None
    #: a primary: its WAL write position; a standby: the position it has replayed
    position: str | None = None
    #: a standby: when the newest transaction it replayed committed at its primary
    replayed_at: datetime | None = None
    #: a standby: its WAL receiver's status (``streaming`` while connected) and what it streams from
    receiver: str | None = None
    sender: str | None = None

    @property
    def streaming(self) -> bool:
        return self.receiver == "streaming"


class ControlServer:
    """The PostgreSQL server of ``sites.<site>.control_db`` (module docstring)."""

    def __init__(self, config: Consortium, site: str) -> None:
        self.site = site
        self.url = libpq_url(state_url(config, site))
        if not self.url.startswith("postgresql://"):
            raise ControlPlaneError(N_("sites.{site}.control_db is not a PostgreSQL database"), site=site)
        self.spec: ServerSpec | None = config.sites[site].control_server
        self.display = display_url(self.url)

    # -- SQL ------------------------------------------------------------------------------------

    def connect(self, timeout: int = 5) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=timeout)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ControlPlaneError(
                N_("the control database of {site} ({display}) does not answer: {first}"),
                site=self.site,
                display=self.display,
                first=first,
            ) from None

    def state(self) -> ServerState:
        try:
            conn = self.connect()
        except ControlPlaneError as exc:
            return ServerState(self.site, False, message_of(exc))
        with conn:
            recovery, read_only, system_id = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on', "
                "(SELECT system_identifier::text FROM pg_control_system())"
            ).fetchone() or (False, False, None)
            if not recovery:
                (position,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone() or (None,)
                return ServerState(self.site, True, None, False, read_only, system_id, position)
            position, replayed_at = conn.execute(
                "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
            ).fetchone() or (None, None)
            receiver = conn.execute("SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver").fetchone()
        status, host, port = receiver or (None, None, None)
        sender = f"{host}:{port}" if host else None
        return ServerState(self.site, True, None, True, read_only, system_id, position, replayed_at, status, sender)

    def heartbeat(self, system: str, target: str) -> datetime | None:
        """The newest heartbeat the active site wrote for ``target`` that this server holds."""
        import psycopg

        with self.connect() as conn:
            try:
                row = conn.execute(
                    "SELECT max(source_newest) FROM replication_lag WHERE system = %s AND target = %s", (system, target)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return row[0] if row else None

    def settings_problems(self) -> list[str]:
        """What this server needs to stream to a standby and, after a failover, be rewound into one."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_level', 'max_wal_senders', 'max_replication_slots', 'wal_log_hints', 'data_checksums', "
                "'full_page_writes')"
            ).fetchall()
        return settings_problems(dict(rows))

    def conninfo(self, application_name: str | None = None) -> str:
        """A connection string to this server for ``primary_conninfo`` and the programs: never a password."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = {k: v for k, v in conninfo_to_dict(self.url).items() if k != "password" and v is not None}
        if application_name:
            params["application_name"] = application_name
        return make_conninfo(**params)  # type: ignore[arg-type]

    def ensure_slot(self, name: str) -> bool:
        """Create the physical slot ``name`` here unless it exists: whether it was created."""
        with self.connect() as conn:
            if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone():
                return False
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
        return True

    def drop_slot(self, name: str, wait: float = 10.0) -> bool:
        """Drop the slot ``name`` here once nothing uses it (a promoted standby's stream ends a moment
        after): whether it was dropped."""
        deadline = time.monotonic() + wait
        with self.connect() as conn:
            while True:
                row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone()
                if row is None:
                    return False
                if not row[0]:
                    break
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SECONDS)
            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
        return True

    def _alter(self, *statements: Any) -> None:
        with self.connect() as conn:
            for statement in statements:
                conn.execute(statement)
            conn.execute("SELECT pg_reload_conf()")

    def follow(self, source: ControlServer, slot: str) -> None:
        """Stream from ``source`` through ``slot`` (this server is a standby), writable once promoted."""
        from psycopg import sql

        self._alter(
            sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(source.conninfo(slot))),
            sql.SQL("ALTER SYSTEM SET primary_slot_name = {}").format(sql.Literal(slot)),
            "ALTER SYSTEM RESET default_transaction_read_only",
        )

    def stop_following(self) -> None:
        """A promoted server forgets its old primary, so a copy taken from it (pg_rewind) does not."""
        self._alter("ALTER SYSTEM RESET primary_conninfo", "ALTER SYSTEM RESET primary_slot_name")

    def fence(self) -> None:
        """No more writes: new transactions read-only, the other sessions of its database ended."""
        self._alter("ALTER SYSTEM SET default_transaction_read_only = on")
        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )

    def unfence(self) -> None:
        self._alter("ALTER SYSTEM RESET default_transaction_read_only")

    def promote(self, timeout: int) -> bool:
        """``pg_promote()``, waiting until the server accepts writes: whether it did in time."""
        with self.connect() as conn:
            row = conn.execute("SELECT pg_promote(true, %s)", (timeout,)).fetchone()
        return bool(row and row[0])

    def checkpoint(self) -> None:
        """A checkpoint now, so the control file says the current timeline: pg_rewind reads the
        source's timeline from it, and until the end-of-recovery checkpoint of a just-promoted
        server finishes it still names the old one and pg_rewind finds "no rewind required"
        (PostgreSQL docs, pg_rewind, "Notes")."""
        with self.connect() as conn:
            conn.execute("CHECKPOINT")

    def wait_for(self, ready: Callable[[ServerState], bool], timeout: float) -> ServerState:
        """Poll until ``ready(state)`` or the timeout: the last state seen."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.state()
            if ready(found) or time.monotonic() >= deadline:
                return found
            time.sleep(POLL_SECONDS)

    # -- the data directory -------------------------------------------------------------------

    def require_spec(self, why: str) -> ServerSpec:
        if self.spec is None:
            raise ControlPlaneError(
                N_(
                    "sites.{site}.control_server is not configured: bcpctl needs the data directory and the "
                    "start and stop commands of {site}'s control server to {why}"
                ),
                site=self.site,
                why=why,
            )
        return self.spec

    def program(self, name: str) -> str:
        spec = self.require_spec(f"run {name}")
        if spec.bin_dir:
            return os.path.join(spec.bin_dir, name)
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
        return found[-1] if found else shutil.which(name) or name

    def run(self, argv: list[str], *, as_owner: bool = True) -> subprocess.CompletedProcess[str]:
        """A program on the data directory, as its owner; a failure to run is an error, its exit code is not."""
        spec = self.require_spec(f"run {os.path.basename(argv[0])}")
        prefix: list[str] = []
        if as_owner and spec.run_as and spec.run_as != getpass.getuser():
            prefix = (
                ["runuser", "-u", spec.run_as, "--"] if os.geteuid() == 0 else ["sudo", "-n", "-u", spec.run_as, "--"]
            )
        try:
            return subprocess.run(
                [*prefix, *argv], capture_output=True, text=True, timeout=spec.timeout, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise ControlPlaneError(
                N_("{prefix} not found (control server of {site})"), prefix=(prefix or argv)[0], site=self.site
            ) from None
        except subprocess.TimeoutExpired:
            raise ControlPlaneError(
                N_("{path} at {site} took longer than {timeout} s (control_server.timeout)"),
                path=os.path.basename(argv[0]),
                site=self.site,
                timeout=spec.timeout,
            ) from None

    def command(self, which: str) -> None:
        """``control_server.start`` or ``.stop``, as configured; exit code 0 or an error naming it."""
        spec = self.require_spec(f"{which} it")
        done = self.run(shlex.split(getattr(spec, which)), as_owner=False)
        if done.returncode != 0:
            raise ControlPlaneError(
                N_("sites.{site}.control_server.{which} failed (exit {returncode}): {done}"),
                site=self.site,
                which=which,
                returncode=done.returncode,
                done=_last_line(done),
            )

    def cluster_on_disk(self) -> str | None:
        """The system identifier of the cluster in the data directory (``None``: none there)."""
        spec = self.require_spec("read its data directory")
        done = self.run([self.program("pg_controldata"), "-D", spec.data_dir])
        found = re.search(r"Database system identifier:\s+(\d+)", done.stdout) if done.returncode == 0 else None
        return found.group(1) if found else None

    def rebuild(self, source: ControlServer, slot: str, token: str) -> tuple[str, str | None, str | None]:
        """Make the (stopped) data directory a standby's copy of ``source``: pg_rewind when it holds
        an earlier copy of the same cluster, else pg_basebackup into a fresh directory, the old one
        moved aside. ``(method, kept aside, why pg_rewind was not used)``."""
        spec = self.require_spec("rebuild it as a standby")
        data = spec.data_dir
        origin = source.state().system_id
        here = self.cluster_on_disk()
        why: str | None = Message(N_("the data directory holds no cluster"))
        if here is not None and here == origin:
            source.checkpoint()
            rewound = self.run(
                [self.program("pg_rewind"), "--target-pgdata", data, "--source-server", source.conninfo(slot),
                 "--write-recovery-conf"]
            )  # fmt: skip
            if rewound.returncode == 0:
                return "pg_rewind", None, None
            why = Message(N_("pg_rewind failed: {output}"), output=_last_line(rewound))
        elif here is not None:
            why = Message(N_("the data directory holds another cluster ({system_id})"), system_id=here)
        kept = self._set_aside(data, token) if os.path.lexists(data) else None
        copied = self.run(
            [self.program("pg_basebackup"), "-D", data, "-d", source.conninfo(slot), "-X", "stream", "-c", "fast",
             "-R", "-S", slot, "-w"]
        )  # fmt: skip
        if copied.returncode != 0:
            aside = Message(N_("; the previous data directory is kept as {kept}"), kept=kept) if kept else ""
            raise ControlPlaneError(
                N_("pg_basebackup into {data} failed: {copied}{aside}"),
                data=data,
                copied=_last_line(copied),
                aside=aside,
            )
        return "pg_basebackup", kept, why

    def _set_aside(self, data: str, token: str) -> str | None:
        """Move the data directory out of the way (never deleted), unless it is empty."""
        try:
            if not os.listdir(data):
                return None
        except OSError:
            pass  # not ours to read: its owner moves it
        aside = f"{data.rstrip('/')}.before-standby-{token}"
        moved = self.run(["mv", "--no-clobber", "--", data, aside])
        if moved.returncode != 0:
            raise ControlPlaneError(N_("could not move {data} aside: {moved}"), data=data, moved=_last_line(moved))
        return aside


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def settings_problems(found: dict[str, str]) -> list[str]:
    """What the settings ``found`` (``pg_settings``' name -> setting) lack, each a :class:`~dc.errors.Message`."""
    problems: list[str] = []
    if found.get("wal_level") not in ("replica", "logical"):
        problems.append(Message(N_("wal_level = replica (it is {setting})"), setting=str(found.get("wal_level"))))
    for name in ("max_wal_senders", "max_replication_slots"):
        if int(found.get(name) or 0) < 1:
            problems.append(
                Message(N_("{name} of at least 1 (it is {setting})"), name=name, setting=str(found.get(name)))
            )
    if found.get("wal_log_hints") != "on" and found.get("data_checksums") != "on":
        problems.append(
            Message(N_("wal_log_hints = on (or data checksums): pg_rewind needs it to rebuild it after a failover"))
        )
    if found.get("full_page_writes") != "on":
        problems.append(Message(N_("full_page_writes = on: pg_rewind needs it")))
    return problems
