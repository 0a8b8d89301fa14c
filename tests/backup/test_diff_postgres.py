"""diff and dump of two real PostgreSQL dumps: per-table row-count changes, the dump itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from backup.browse import dump_file, file_entry
from backup.diff import diff_snapshots
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from tests.conftest import Cli
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.postgres


def _seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA juki")
        conn.execute("CREATE TABLE juki.residents (atena_no bigint PRIMARY KEY, name text)")
        conn.execute("CREATE TABLE juki.households (setai_no bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE juki.moves (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO juki.residents SELECT i, '住民' || i FROM generate_series(1, 1000) i")
        conn.execute("INSERT INTO juki.households SELECT i FROM generate_series(1, 400) i")


def test_diff_of_two_postgres_dumps_shows_row_count_changes(repo, postgres: PostgresServer) -> None:  # type: ignore[no-untyped-def]
    dsn = postgres.create_database("kasumi_juki")
    _seed(dsn)
    source = parse_source(f"postgres:{dsn}")
    first = run_backup(repo, BackupRequest(source, system="kasumi-juki"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO juki.residents VALUES (1001, '新生児'), (1002, '転入者')")
        conn.execute("DELETE FROM juki.households WHERE setai_no <= 10")
        conn.execute("CREATE TABLE juki.certificates (id bigint)")
        conn.execute("INSERT INTO juki.certificates VALUES (1)")
    second = run_backup(repo, BackupRequest(source, system="kasumi-juki"))
    before, after = find_snapshot(repo, first.snapshot_id), find_snapshot(repo, second.snapshot_id)
    result = diff_snapshots(repo, before, after)
    assert {(t.table, t.rows_before, t.rows_after, t.delta) for t in result.tables} == {
        ("juki.residents", 1000, 1002, 2),
        ("juki.households", 400, 390, -10),
        ("juki.certificates", None, 1, 1),
    }
    (change,) = result.changes  # the one stream, its content changed
    assert change.change == "changed" and "content" in change.what
    dumped = b"".join(dump_file(repo, after, file_entry(repo, after, None)))
    assert "新生児".encode() in dumped and "新生児".encode() not in b"".join(
        dump_file(repo, before, file_entry(repo, before, None))
    )


def test_cli_diff_and_dump_of_a_postgres_snapshot(cli: Cli, postgres: PostgresServer, tmp_path: Path) -> None:
    dsn = postgres.create_database("naka_juki")
    _seed(dsn)
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    assert cli("backup", "run", "--repo", url, "--source", f"postgres:{dsn}", "--system", "naka-juki").returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO juki.moves VALUES (1), (2), (3)")
    assert cli("backup", "run", "--repo", url, "--source", f"postgres:{dsn}", "--system", "naka-juki").returncode == 0
    ids = [s["id"] for s in json.loads(cli("snapshots", "--repo", url, "--json").stdout)]
    shown = cli("diff", ids[0], ids[1], "--repo", url, "--json")
    assert shown.returncode == 0, shown.stderr
    tables = json.loads(shown.stdout)["tables"]
    assert tables == [{"table": "juki.moves", "rows_before": 0, "rows_after": 3, "delta": 3}]
    text = cli("diff", ids[0][:8], ids[1][:8], "--repo", url)
    assert "juki.moves" in text.stdout and "+3" in text.stdout
    dumped = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "dump", "latest:naka-juki", "--repo", url],
        capture_output=True,
        env=os.environ,
        timeout=120,
    )
    assert dumped.returncode == 0 and b"juki.moves" in dumped.stdout
    table = cli("dump", "latest:naka-juki", "--table", "juki.moves", "--repo", url)
    assert table.returncode == 0, table.stderr
    assert "COPY juki.moves" in table.stdout and "COPY juki.residents" not in table.stdout
    missing = cli("dump", "latest:naka-juki", "--table", "juki.nope", "--repo", url)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "juki.moves" in missing.stderr


def test_dump_of_one_table_gives_its_rows_as_sql(repo, postgres: PostgresServer) -> None:  # type: ignore[no-untyped-def]
    from backup.tabledump import table_sql
    from dc.errors import UsageError

    dsn = postgres.create_database("goka_tables")
    _seed(dsn)
    done = run_backup(repo, BackupRequest(parse_source(f"postgres:{dsn}"), system="goka-tables"))
    snap = find_snapshot(repo, done.snapshot_id)
    sql = b"".join(table_sql(repo, snap, "juki.residents")).decode()
    assert "CREATE TABLE juki.residents" in sql and "住民1000" in sql
    assert "juki.households" not in sql
    rows = sql.split("COPY juki.residents")[1].split("\\.")[0].strip().splitlines()[1:]
    assert len(rows) == snap.verify["tables"]["juki.residents"] == 1000
    for bad in ("juki.nothing", "../etc", ""):
        with pytest.raises(UsageError):
            b"".join(table_sql(repo, snap, bad))


def test_cli_diff_names_a_table_as_written(cli: Cli, postgres: PostgresServer, tmp_path: Path) -> None:
    """A table's name is the database owner's text: drawn as rich markup, '[red]moves' was
    listed as 'moves' (another table) and an escape sequence acted on the terminal."""
    dsn = postgres.create_database("hostile_tables")
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE "[red]moves" (id bigint)')
        conn.execute('CREATE TABLE "e\x1b[2J" (id bigint)')
    assert cli("backup", "run", "--repo", url, "--source", f"postgres:{dsn}", "--system", "h").returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('INSERT INTO "[red]moves" VALUES (1)')
        conn.execute('INSERT INTO "e\x1b[2J" VALUES (1)')
    assert cli("backup", "run", "--repo", url, "--source", f"postgres:{dsn}", "--system", "h").returncode == 0
    ids = [s["id"] for s in json.loads(cli("snapshots", "--repo", url, "--json").stdout)]
    text = cli("diff", ids[0], ids[1], "--repo", url, env={"COLUMNS": "200"})
    assert text.returncode == 0, text.stderr
    assert "[red]moves" in text.stdout and "e\\x1b[2J" in text.stdout and "\x1b" not in text.stdout
