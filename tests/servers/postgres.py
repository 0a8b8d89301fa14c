"""A private PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary directory, on 127.0.0.1.

initdb refuses to run as root, so as root the cluster runs as the ``postgres`` system user
(created by Debian's package). Authentication is ``trust`` on loopback only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
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


def start_postgres() -> tuple[PostgresServer, callable]:
    """Start a cluster; return it and a stop function."""
    owner = None
    base = Path(tempfile.mkdtemp(prefix="bcpctl-pg-"))
    if os.geteuid() == 0:
        owner = "postgres"
        pw = pwd.getpwnam(owner)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    datadir = base / "data"
    subprocess.run(
        _as_owner(
            [
                _bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            owner,
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = free_port()
    options = f"-k {base} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(base / "log"), "-w", "start"], owner),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    server = PostgresServer(datadir, port)

    def stop() -> None:
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"], owner),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(base, ignore_errors=True)

    return server, stop
