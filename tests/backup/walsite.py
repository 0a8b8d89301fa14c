"""A PostgreSQL primary archiving its WAL through the real ``bcpctl wal push``, and its configuration.

PostgreSQL runs as the ``postgres`` account (initdb refuses root), and this machine's Python
lives where only root may execute it. So the server's ``archive_command`` and
``restore_command`` are a few lines of bash that hand their arguments over loopback to a relay
in the test process, which runs the real ``bcpctl wal push``/``get`` as root in the server's
working directory and answers with its exit status. PostgreSQL sees exactly what bcpctl
decided: 0 only after bcpctl exited 0; anything else (bcpctl failing or killed, the relay
gone) is a failure and the file stays unarchived.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml

from backup.archiving import archive_settings
from backup.keyfile import add_key_file
from backup.opening import init_repository, open_repository
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD
from tests.servers.ports import serve_each
from tests.servers.postgres import Cluster, new_cluster

SYSTEM = "goka-juki"


@dataclass
class Relay:
    """Runs ``bcpctl wal …`` for the server; ``procs`` are the bcpctl processes it started."""

    env: dict[str, str]
    owner: str | None
    server: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: extra environment for the next bcpctl runs (failpoints)
    extra: dict[str, str] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def serve(self) -> None:
        serve_each(self.server, self._one)

    def _one(self, conn: socket.socket) -> None:
        with conn:
            line = conn.makefile("rb").readline().decode().rstrip("\n")
            cwd, *args = line.split("\t")
            self.calls.append(args)
            proc = subprocess.Popen(
                [sys.executable, "-m", "bcpctl.cli", "wal", *args],
                cwd=cwd,
                env=self.env | self.extra,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs.append(proc)
            code = proc.wait()
            if code == 0 and args[0] == "get" and self.owner:
                target = Path(cwd) / args[2]
                pw = pwd.getpwnam(self.owner)
                os.chown(target, pw.pw_uid, pw.pw_gid)
            conn.sendall(f"{code if code >= 0 else 128 - code}\n".encode())

    def close(self) -> None:
        self.server.close()


def relay_script(base: Path, port: int, system: str) -> Path:
    script = base / "bcpctl-wal"
    script.write_text(
        "#!/bin/bash\n"
        f"exec 3<>/dev/tcp/127.0.0.1/{port} || exit 99\n"
        "IFS=$'\\t'\n"
        f'printf "%s\\t%s\\t--system\\t{system}\\n" "$PWD" "$*" >&3\n'
        "read -r code <&3 || exit 98\n"
        'exit "$code"\n'
    )
    script.chmod(0o755)
    return script


@dataclass
class WalSite:
    base: Path
    cluster: Cluster
    config: Path
    repo: Path
    relay: Relay
    script: Path

    def sql(self, query: str, params: Any = None, database: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.cluster.dsn(database), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


@contextmanager
def wal_site(env: dict[str, str], *, key_file: bool = False) -> Iterator[WalSite]:
    """A running primary whose archive_command is ``bcpctl wal push %p``, its repository and config.

    ``key_file``: the configuration also names a key file (``base/key``, backup/keyfile.py), which
    ``wal push``/``wal get`` then unlock with instead of the passphrase.
    """
    base = Path(tempfile.mkdtemp(prefix="bcpctl-walsite-"))
    base.chmod(0o755)
    repo = base / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    password_file = base / "password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    secrets_config = {"password_file": str(password_file)}
    if key_file:
        with open_repository(LocalBackend(repo), PASSWORD, sync=False) as unlocked:
            add_key_file(unlocked, base / "key")
        secrets_config["key_file"] = str(base / "key")
    relay_env = dict(env)
    relay = Relay(relay_env, "postgres" if os.geteuid() == 0 else None)
    script = relay_script(base, relay.port, SYSTEM)
    cluster = new_cluster(settings={"fsync": "off"})
    with (cluster.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(archive_settings(str(script)))
    config = base / "bcpctl.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "consortium": "t",
                "control_db": f"sqlite:///{base / 'control.db'}",
                "sites": {"primary": {"prefecture": "茨城県", "repository": str(repo)}},
                "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
                "systems": {
                    SYSTEM: {
                        "tenant": "goka",
                        "business": "住民基本台帳",
                        "tier": 1,
                        "rpo": "1m",
                        "rto": "1h",
                        "source": {
                            "kind": "postgres-wal",
                            "dsn": cluster.dsn("postgres"),
                            "wal_command": str(script),
                            **({"run_as": relay.owner} if relay.owner else {}),
                        },
                        "smoke": "SELECT count(*) FROM juki",
                    }
                },
                "secrets": secrets_config,
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    relay_env["BCPCTL_CONFIG"] = str(config)
    relay_env.pop("BCPCTL_PASSWORD", None)
    subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "db", "upgrade", "--config", str(config)],
        env=relay_env,
        check=True,
        capture_output=True,
    )
    threading.Thread(target=relay.serve, daemon=True).start()
    try:
        cluster.start()
        yield WalSite(base, cluster, config, repo, relay, script)
    finally:
        relay.close()
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
