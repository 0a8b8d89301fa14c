"""A private PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary directory, on 127.0.0.1.

initdb refuses to run as root, so as root the cluster runs as the ``postgres`` system user
(created by Debian's package). Authentication is ``trust`` on loopback only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import free_port, wait_for_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: run 'make test' (installs the postgresql package)")
    return path


@dataclass
class PostgresServer:
    datadir: Path
    port: int
    user: str = "postgres"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    if owner is None:
        return argv
    return ["runuser", "-u", owner, "--", *argv]


@dataclass
class Cluster:
    """A cluster in its own private directory, started and stopped by commands — as bcpctl drives a
    site's control server (``sites.<name>.control_server``). Without ``initdb`` its data directory
    does not exist yet: ``pg_basebackup`` makes it."""

    base: Path
    port: int
    settings: dict[str, str]
    owner: str | None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> list[str]:
        return _as_owner([_bin("pg_ctl"), "-D", str(self.datadir), *args], self.owner)

    def start_command(self) -> str:
        options = " ".join(
            [f"-k {self.base} -p {self.port} -c listen_addresses=127.0.0.1"]
            + [f"-c {name}={value}" for name, value in self.settings.items()]
        )
        return shlex.join(self._pg_ctl("-o", options, "-l", str(self.base / "log"), "-w", "-t", "120", "start"))

    def stop_command(self) -> str:
        return shlex.join(self._pg_ctl("-m", "fast", "-w", "-t", "120", "stop"))

    def server_spec(self) -> dict[str, str]:
        """``sites.<name>.control_server`` for this cluster."""
        spec = {"data_dir": str(self.datadir), "start": self.start_command(), "stop": self.stop_command()}
        return spec | ({"run_as": self.owner} if self.owner else {})

    def start(self) -> None:
        subprocess.run(shlex.split(self.start_command()), check=True, stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def crash(self) -> None:
        """An immediate stop: the server dies as in a power loss, nothing flushed on the way out."""
        subprocess.run(self._pg_ctl("-m", "immediate", "stop"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def remove(self) -> None:
        self.crash()
        shutil.rmtree(self.base, ignore_errors=True)


def new_cluster(*, initdb: bool = True, settings: dict[str, str] | None = None) -> Cluster:
    """A private cluster on a free loopback port, not started; with ``initdb`` its data directory exists."""
    owner = None
    base = Path(tempfile.mkdtemp(prefix="bcpctl-pg-"))
    if os.geteuid() == 0:
        owner = "postgres"
        pw = pwd.getpwnam(owner)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    cluster = Cluster(base, free_port(), dict(settings or {}), owner)
    if initdb:
        subprocess.run(
            _as_owner(
                [_bin("initdb"), "-D", str(cluster.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync"],
                owner,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        # In postgresql.conf too, not only on the command line: pg_rewind finishes a crashed
        # target's recovery in single-user mode, which reads only the file, and refuses a target
        # whose control file then says wal_log_hints = off. A pg_basebackup copy inherits the file.
        with (cluster.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in cluster.settings.items())
    return cluster


def start_postgres() -> tuple[PostgresServer, Callable[[], None]]:
    """Start a cluster; return it and a stop function."""
    cluster = new_cluster(settings={"fsync": "off", "full_page_writes": "off"})
    cluster.start()
    return PostgresServer(cluster.datadir, cluster.port), cluster.remove
