"""The disaster of the lost-work tests: a real primary archiving through ``bcpctl wal push``,
its archive cut, more transactions committed (the ones a failover loses), its ``pg_wal`` copied
(what survived), then killed. One per test package: building it costs a backup and a cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlalchemy import Engine

from dc.config import Consortium, load_config
from dc.state import open_state
from failover.records import start_run
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli
from tests.servers.postgres import _as_owner, _bin

SECRET = "987654321098"  # a 個人番号 planted in every row: it must appear in no output


@dataclass
class Disaster:
    site: WalSite
    survivors: Path
    #: the segments written after the archive was cut, oldest first, and per segment the gap's
    #: rows as (operation, table, id) with the xid that wrote them
    segments: list[str] = field(default_factory=list)
    rows: list[set[tuple[str, str, int, int]]] = field(default_factory=list)

    def lost(
        self, survivors: Path | str, *extra: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        cli = Cli(self.site.relay.env | (env or {}))
        done = cli(
            "failover",
            "lost",
            SYSTEM,
            "--config",
            str(self.site.config),
            "--surviving-wal",
            str(survivors),
            "--json",
            *extra,
        )
        assert done.returncode == 0, done.stderr
        return done, json.loads(done.stdout)


def _archived(site: WalSite) -> None:
    name = str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while (site.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") < name:
        assert time.monotonic() < deadline, f"{name} not archived"
        time.sleep(0.2)


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[object, ...] = ()) -> tuple[int, int]:
    row = conn.execute(query + " RETURNING id, xmin::text::bigint", params).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="package")
def disaster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disaster]:
    home = tmp_path_factory.mktemp("home")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BCPCTL_CONTROL_DB", "BCPCTL_CONFIG", "BCPCTL_REPO", "BCPCTL_FAILPOINTS")
    }
    env |= {"BCPCTL_CACHE_DIR": str(home / "cache"), "XDG_STATE_HOME": str(home / "state"), "BCPCTL_PASSWORD": PASSWORD}
    with wal_site(env) as site:
        site.sql(
            "CREATE TABLE idou (id serial PRIMARY KEY, lg_code text, kind text, name text, kojin_bango text);"
            "CREATE TABLE shuno (id serial PRIMARY KEY, lg_code text, amount int, kojin_bango text);"
            "CREATE TABLE audit (id serial PRIMARY KEY, note text)"
        )
        raw = yaml.safe_load(site.config.read_text(encoding="utf-8"))
        raw["tenants"]["naka"] = {"name": "那珂市", "lg_code": "082261", "population": 55986}
        raw["systems"][SYSTEM]["smoke"] = "SELECT count(*) FROM idou"
        raw["systems"][SYSTEM]["reentry"] = {
            "public.idou": {"business": "住民基本台帳 異動", "town": "lg_code", "fields": ["id", "kind", "name"]},
            "shuno": {"business": "税 収納", "town": "lg_code", "fields": ["id", "amount"]},
        }
        site.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        cli = Cli(site.relay.env)
        with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
            for i in range(4):
                conn.execute(
                    "INSERT INTO idou (lg_code, kind, name, kojin_bango) VALUES ('085421', '転入', %s, %s)",
                    (f"前{i}", SECRET),
                )
        backed = cli("backup", "run", "--config", str(site.config))
        assert backed.returncode == 0, backed.stderr
        with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO idou (lg_code, kind, name, kojin_bango) VALUES ('085421', '出生', '既', %s)", (SECRET,)
            )
        _archived(site)
        # the offsite's last WAL: from here on nothing reaches the archive
        site.sql("ALTER SYSTEM SET archive_command = 'false'")
        site.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        made = Disaster(site, tmp_path_factory.mktemp("survivors"))
        with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
            for phase in range(3):
                made.segments.append(str(_scalar(conn, "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")))
                rows: set[tuple[str, str, int, int]] = set()
                for n in range(3):
                    town = ("085421", "082261")[n % 2]
                    rid, xid = _one(
                        conn,
                        "INSERT INTO idou (lg_code, kind, name, kojin_bango) VALUES (%s, '転居', %s, %s)",
                        (town, f"住民{phase}-{n}", SECRET),
                    )
                    rows.add(("追加", "public.idou", rid, xid))
                rid, xid = _one(
                    conn,
                    "INSERT INTO shuno (lg_code, amount, kojin_bango) VALUES ('082261', %s, %s)",
                    (1000 + phase, SECRET),
                )
                rows.add(("追加", "public.shuno", rid, xid))
                rid, xid = _one(conn, "UPDATE idou SET kind = '転出' WHERE id = %s", (phase + 1,))
                rows.add(("変更", "public.idou", rid, xid))
                conn.execute("INSERT INTO audit (note) VALUES ('not on any worklist')")
                made.rows.append(rows)
                if phase < 2:
                    conn.execute("SELECT pg_switch_wal()")
            with conn.transaction():
                row = conn.execute("DELETE FROM idou WHERE id = 4 RETURNING id, txid_current()").fetchone()
            assert row is not None
            made.rows[2].add(("削除", "public.idou", 4, int(row[1])))
        shutil.copytree(site.cluster.datadir / "pg_wal", made.survivors / "pg_wal")
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(site.cluster.datadir), "-m", "immediate", "stop"], site.cluster.owner),
            capture_output=True,
        )
        yield made


def with_survivors(disaster: Disaster, tmp: Path, survivors: list[str]) -> tuple[Consortium, Path]:
    raw = yaml.safe_load(disaster.site.config.read_text(encoding="utf-8"))
    raw["systems"][SYSTEM]["source"]["surviving_wal"] = survivors
    # a table the database lacks and a column it lacks: named, the rest still listed
    raw["systems"][SYSTEM]["reentry"]["public.gone"] = {"business": "税 収納"}
    raw["systems"][SYSTEM]["reentry"]["public.idou"]["fields"].append("nosuch")
    tmp.mkdir()
    path = tmp / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def failover_run(config: Consortium, declared: datetime) -> tuple[Engine, str]:
    """The control database of ``config`` with a failover run recorded: what owns the scratch clusters."""
    state = open_state(config.control_db)
    run_id = f"{declared:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    start_run(state, run_id, kind="failover", mode="execute", consortium="t", site=None, declared_at=declared,
              deadline=None)  # fmt: skip
    return state, run_id
