"""The example consortium (examples/ibaraki.yaml) on the real test PostgreSQL server.

Every system of the example keeps its kind: five PostgreSQL databases, two SQLite files and
one directory tree, seeded with synthetic residents. The primary and offsite repositories
are local directories; the offsite is filled by a keyless object copy. Failover targets
(``restore_dsn``/``restore_dir``) are separate databases and directories. Database names
carry a per-build prefix so builds never collide on the shared server.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from backup.jobs import backup_systems
from backup.opening import init_repository, open_repository
from bcpctl.demo.consortium import REPRESENTATIVE, keep_systems
from dc.config import Consortium, load_config
from dc.state import open_state
from failover.context import RunContext
from replication.ledger import Ledger
from replication.sync import replicate
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD
from tests.failover.lostsite import disaster  # noqa: F401  (a package fixture: one disaster for every lost-work test)
from tests.servers.postgres import PostgresServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
#: the synthetic resident every 住民基本台帳 holds; its address must read back intact.
CANARY_ADDR = "茨城県猿島郡五霞町小福田1162-1"


@dataclass
class Built:
    root: Path
    config_path: Path
    config: Consortium
    config_dir: Path
    prefix: str
    server: PostgresServer

    def source_dsn(self, system: str) -> str:
        return self.config.systems[system].source.dsn  # type: ignore[return-value]

    def context(self) -> RunContext:
        return RunContext.create(self.config, self.config_dir, open_state(None))

    def offsite_repo(self) -> Path:
        return Path(self.config.sites["offsite"].repository)

    def primary_repo(self) -> Path:
        return Path(self.config.sites["primary"].repository)

    def backup_and_ship(self) -> None:
        # Module-scoped builds run before the per-test environment exists: keep the cache here.
        with cache_dir(self.root / "cache"), open_repository(LocalBackend(self.primary_repo()), PASSWORD) as repo:
            outcomes = backup_systems(self.config, repo, None, config_dir=self.config_dir)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
        self.ship()

    def ship(self) -> None:
        """Keyless replication primary → offsite, as ``bcpctl replicate`` does it."""
        ledger = Ledger(open_state(f"sqlite:///{self.root / 'replication-ledger.db'}", create=True))
        shipped = replicate(LocalBackend(self.primary_repo()), LocalBackend(self.offsite_repo(), create=True), ledger)
        assert shipped.problem() is None, shipped.problem()

    def sandbox_databases(self) -> list[str]:
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bcpdrill%'").fetchall()
        return [r[0] for r in rows]

    def sandbox_roles(self) -> list[str]:
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'bcpdrill%'").fetchall()
        return [r[0] for r in rows]

    def drop_databases(self) -> None:
        """Drop this build's databases (sources, failover targets, kept copies): the server is shared."""
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            names = [
                r[0]
                for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (self.prefix + "%",))
            ]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drill_dir_entries(self) -> list[str]:
        path = Path(self.config.sites["offsite"].drill_dir or "")
        return sorted(p.name for p in path.iterdir()) if path.exists() else []


@contextmanager
def cache_dir(path: Path) -> Iterator[None]:
    old = os.environ.get("BCPCTL_CACHE_DIR")
    os.environ["BCPCTL_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("BCPCTL_CACHE_DIR", None)
        else:
            os.environ["BCPCTL_CACHE_DIR"] = old


def seed_postgres(dsn: str, rows: int, *, canary: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE residents (atena_no bigint PRIMARY KEY, name text, addr text)")
        conn.execute("CREATE TABLE households (setai_no bigint PRIMARY KEY, head bigint)")
        conn.execute(
            "INSERT INTO residents SELECT i, '住民' || i, '茨城県' || (i %% 97) || '番地' "
            "FROM generate_series(1, %s) i",
            (rows,),
        )
        conn.execute("INSERT INTO households SELECT i, i FROM generate_series(1, %s) i", (rows // 3,))
        if canary:
            conn.execute("INSERT INTO residents VALUES (999999, '試験 太郎', %s)", (CANARY_ADDR,))


def seed_sqlite(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE residents (atena_no INTEGER PRIMARY KEY, name TEXT, addr TEXT)")
    conn.executemany("INSERT INTO residents VALUES (?,?,?)", [(i, f"住民{i}", f"{i % 30}番") for i in range(1, rows)])
    conn.execute("INSERT INTO residents VALUES (999999, '試験 太郎', ?)", (CANARY_ADDR,))
    conn.commit()
    conn.close()


def build_consortium(
    root: Path, server: PostgresServer, *, rows: int = 1500, drills: dict[str, Any] | None = None
) -> Built:
    """Lay out, seed, back up and ship the example consortium under ``root``."""
    prefix = f"ft{secrets.token_hex(3)}_"
    # the example's representative eight of its 168 systems: real PostgreSQL databases for all would
    # make every fixture minutes long; bcpctl demo --all-systems runs the whole list
    raw = keep_systems(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), REPRESENTATIVE)
    raw.pop("control_db", None)
    raw["sites"]["primary"].update(repository=str(root / "primary" / "repo"), known_hosts=None)
    offsite = raw["sites"]["offsite"]
    offsite.update(
        repository=str(root / "offsite" / "repo"),
        drill_dsn=server.dsn("postgres"),
        drill_dir=str(root / "offsite" / "drill"),
        object_lock_days=0,
    )
    smoke_expect = {}
    for name, system in raw["systems"].items():
        db = prefix + name.replace("-", "_")
        kind = system["source"]["kind"]
        if kind == "postgres":
            system["source"]["dsn"] = server.create_database(db)
            system["restore_dsn"] = server.dsn(db + "_dr")
            seed_postgres(system["source"]["dsn"], rows if name.endswith("juki") else rows // 3, canary=True)
            system["smoke"] = "SELECT addr FROM residents WHERE atena_no = 999999"
            smoke_expect[name] = CANARY_ADDR
        elif kind == "sqlite":
            path = root / "primary" / "sources" / f"{name}.sqlite"
            seed_sqlite(path, rows // 2)
            system["source"]["path"] = str(path)
            system["restore_dir"] = str(root / "offsite" / "prod" / name)
            system["smoke"] = "SELECT addr FROM residents WHERE atena_no = 999999"
            smoke_expect[name] = CANARY_ADDR
        else:
            tree = root / "primary" / "sources" / name
            tree.mkdir(parents=True)
            for i in range(40):
                (tree / f"gaiji-{i:04d}.txt").write_text(f"外字 {i} " * 50, encoding="utf-8")
            system["source"]["path"] = str(tree)
            system["restore_dir"] = str(root / "offsite" / "prod" / name)
            system["smoke"] = "command:test -s gaiji-0001.txt"
    # The example's drills section, minus what needs the real data center: its steady-state probe
    # (production PostgreSQL on 5432), Ansible hooks and the two-person rule (tested on their own).
    example_drills = {k: v for k, v in raw.get("drills", {}).items() if k not in ("steady_state", "failover")}
    raw["drills"] = {
        **example_drills,
        "smoke_expect": smoke_expect,
        "report_dir": str(root / "reports"),
        "failover": {"hooks": "manual"},
        **(drills or {}),
    }
    config_path = root / "bcpctl.yaml"
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config, resolved = load_config(config_path)
    init_repository(LocalBackend(root / "primary" / "repo", create=True), PASSWORD, kdf=FAST_KDF)
    built = Built(root, config_path, config, resolved.parent, prefix, server)
    built.backup_and_ship()
    return built


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Built]:
    """A consortium shared by a module's tests that do not change its data (drills only read it)."""
    built = build_consortium(tmp_path_factory.mktemp("consortium"), postgres)
    yield built
    built.drop_databases()


@pytest.fixture
def own_example(tmp_path: Path, postgres: PostgresServer) -> Iterator[Built]:
    """A consortium of the test's own, for tests that tamper with it or move production."""
    built = build_consortium(tmp_path / "consortium", postgres)
    yield built
    built.drop_databases()
