"""Both tools' archives for one PostgreSQL cluster of the WAL benchmark, each fresh and encrypted.

pgBackRest keeps its own repository on local disk, encrypted (``repo1-cipher-type=aes-256-cbc``),
at its defaults otherwise (gz) but for ``archive-timeout`` (``WAIT_SECONDS``, below). bcpctl's
repository is made with the production Argon2id passphrase slot and a key-file slot; the database
host's configuration names the key file, as docs/deployment.md sets up a database host, so
``wal push``/``wal get`` unlock with HKDF (backup/keyfile.py) while base backup and restore use
the passphrase.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.walrelay import SYSTEM

STANZA = "bench"

#: How long the benchmark waits for any one step before it calls the run failed, and pgBackRest's
#: ``archive-timeout`` with it. That option is not a speed setting but where pgBackRest gives up
#: waiting: for the WAL a backup needs to reach its archive, and, in an asynchronous
#: ``archive-get``, for its fetcher to put the asked-for segment into the spool. At its default of
#: 60 s a fetcher starved of CPU on a loaded machine (the benchmark runs under ``nice`` on CI)
#: makes ``archive-get`` fail for a segment that is in the archive; PostgreSQL takes that for
#: "no such WAL", and when it is the backup's checkpoint segment the restored cluster refuses to
#: start ("could not locate required checkpoint record"). A segment that really is missing is still
#: answered at once: the fetcher reports it absent, no timeout is involved.
WAIT_SECONDS = 600


@dataclass(frozen=True)
class Archives:
    base: Path
    #: bcpctl's configuration (the database host's: key file, repository, the system)
    config: Path
    repo: Path
    pgbr_conf: Path
    pgbr_repo: Path
    #: ``pgbackrest --config … --stanza …``
    pgbackrest: list[str]
    #: the environment both tools run in (``BCPCTL_CONFIG`` set, no passphrase variable)
    env: dict[str, str]


def make_archives(base: Path, datadir: Path, port: int, socket_dir: Path, owner: str | None, script: Path) -> Archives:
    """A fresh bcpctl repository and configuration and a fresh pgBackRest configuration under
    ``base`` for the cluster at ``datadir``; ``script`` is the relay (bcpctl's restore_command)."""
    from backup.keyfile import add_key_file
    from backup.opening import init_repository, open_repository
    from storage.local import LocalBackend

    password = secrets.token_urlsafe(24)
    repo = base / "repo"
    init_repository(LocalBackend(repo, create=True), password)  # production KDF for the passphrase
    with open_repository(LocalBackend(repo), password, sync=False) as unlocked:
        add_key_file(unlocked, base / "db-host.key")  # the database host's wal push/get key
    (base / "password").write_text(password)
    (base / "password").chmod(0o600)
    pgbr_conf = base / "pgbackrest.conf"
    pgbr_repo = base / "pgbr"
    pgbr_conf.write_text(
        "[global]\n"
        f"repo1-path={pgbr_repo}\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={secrets.token_urlsafe(24)}\n"
        f"lock-path={base / 'pgbr-lock'}\nlog-path={base / 'pgbr-log'}\nlog-level-console=warn\n"
        f"log-level-file=off\nrepo1-retention-full=2\nstart-fast=y\narchive-timeout={WAIT_SECONDS}\n"
        f"[{STANZA}]\npg1-path={datadir}\npg1-port={port}\npg1-socket-path={socket_dir}\n"
        "pg1-user=postgres\n"
    )
    config = base / "bcpctl.yaml"
    source = {"kind": "postgres-wal", "dsn": f"postgresql://postgres@127.0.0.1:{port}/postgres",
              "wal_command": f"{script} bcpctl"}  # fmt: skip
    config.write_text(
        yaml.safe_dump(
            {
                "consortium": "bench",
                "control_db": f"sqlite:///{base / 'control.db'}",
                "sites": {"primary": {"prefecture": "茨城県", "repository": str(repo)}},
                "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
                "systems": {
                    SYSTEM: {
                        "tenant": "goka", "business": "住民基本台帳", "tier": 1, "rpo": "1m", "rto": "1h",
                        "source": source | ({"run_as": owner} if owner else {}),
                        "smoke": "SELECT count(*) FROM pgbench_accounts",
                    }
                },
                "secrets": {"password_file": str(base / "password"), "key_file": str(base / "db-host.key")},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "BCPCTL_PASSWORD"}
    env["BCPCTL_CONFIG"] = str(config)
    pgbackrest = ["pgbackrest", f"--config={pgbr_conf}", f"--stanza={STANZA}"]
    return Archives(base, config, repo, pgbr_conf, pgbr_repo, pgbackrest, env)


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (what an archive stored)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Run ``argv`` to success and return its wall seconds; its error's tail otherwise."""
    import time

    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return time.monotonic() - started
