"""Failback staging at the primary: restore beside production, verify, then swap into place.

Failback must never lose the offsite site's writes, and never destroy what the recovered
primary holds either (it may be the only copy of something). So each system is restored
into a staging database or directory next to its production location (named like a drill
sandbox, recorded first, cleaned up if the failback stops), verified there, and only then
swapped in: the primary's previous data is renamed ``…_before_failback_<token>`` and kept.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from backup.snapshot import Snapshot
from backup.sources import redact_dsn
from dc.config import Consortium
from failover.plan import PlanStep
from failover.resources import intend_resource, set_resource_state
from failover.sandbox import DIR_PREFIX, Target, pg_name, with_database
from failover.targets import database_name, resolve

if TYPE_CHECKING:
    import psycopg


class Staging:
    def __init__(self, state: Engine, run_id: str, token: str, config: Consortium, config_dir: Path | None) -> None:
        self.state = state
        self.run_id = run_id
        self.token = token
        self.config = config
        self.config_dir = config_dir
        # Systems of one group are staged in parallel, and siblings share a staging root.
        self._roots = threading.Lock()

    def production_path(self, system_id: str) -> Path:
        path = self.config.systems[system_id].source.path
        assert path is not None
        return resolve(path, self.config_dir).absolute()

    def target(self, step: PlanStep, snap: Snapshot) -> Target:
        """A fresh staging database or directory beside the system's production location."""
        import psycopg
        from psycopg import sql

        source = self.config.systems[step.system].source
        if snap.source_kind == "postgres":
            assert source.dsn is not None
            admin = with_database(source.dsn, "postgres")
            name = pg_name(self.token, f"fb_{step.system}")
            rid = intend_resource(self.state, self.run_id, "pg_database", name, redact_dsn(admin))
            with psycopg.connect(admin, autocommit=True, connect_timeout=15) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            set_resource_state(self.state, rid, "created")
            return Target(name, dsn=with_database(source.dsn, name))
        base = self.production_path(step.system).parent
        root = base / f"{DIR_PREFIX}{self.token}"
        with self._roots:
            if not root.exists():
                rid = intend_resource(self.state, self.run_id, "directory", str(root), str(base))
                root.mkdir(mode=0o700, parents=True)
                set_resource_state(self.state, rid, "created")
        path = root / step.system
        path.mkdir(mode=0o700)
        return Target(str(path), path=path)

    def swap(self, step: PlanStep, snap: Snapshot, target: Target) -> str | None:
        """Put the verified staging copy in place; return where the primary's previous data was kept."""
        source = self.config.systems[step.system].source
        if snap.source_kind == "postgres":
            assert source.dsn is not None and target.dsn is not None
            return self._swap_database(source.dsn, database_name(target.dsn))
        assert target.path is not None
        production = self.production_path(step.system)
        staged = target.path / production.name if snap.source_kind == "sqlite" else target.path
        kept = production.with_name(f"{production.name}.before-failback-{self.token}")
        moved = None
        if production.exists():
            os.rename(production, kept)
            moved = str(kept)
            # A SQLite file's -wal/-shm belong to the old file: left beside the new one they would corrupt it.
            for suffix in ("-wal", "-shm"):
                side = production.with_name(production.name + suffix)
                if side.exists():
                    os.rename(side, kept.with_name(kept.name + suffix))
        os.rename(staged, production)
        return moved

    def _swap_database(self, production_dsn: str, staged: str) -> str | None:
        import psycopg
        from psycopg import sql

        name = database_name(production_dsn)
        kept = f"{name}_before_failback_{self.token}"[:63]
        with psycopg.connect(with_database(production_dsn, "postgres"), autocommit=True, connect_timeout=15) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                # The primary is fenced: sessions left on the old database cannot write; end them to rename it.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                _rename(conn, name, kept)
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staged), sql.Identifier(name)))
        return kept if exists else None


def _rename(conn: psycopg.Connection[tuple[Any, ...]], old: str, new: str, *, attempts: int = 50) -> None:
    """ALTER DATABASE … RENAME, retried while terminated sessions are still exiting."""
    import psycopg
    from psycopg import sql

    for attempt in range(attempts):
        try:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
