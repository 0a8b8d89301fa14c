"""PostgreSQL sources against a real server: consistent dump, row counts, dedup across days."""

from __future__ import annotations

import psycopg
import pytest

from backup.dbrestore import restore_postgres
from backup.errors import RepositoryError, SourceError
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source, redact_dsn
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.postgres


def seed(dsn: str, residents: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA juki")
        conn.execute("CREATE TABLE juki.residents (atena_no bigint PRIMARY KEY, name text, kana text, addr text)")
        conn.execute("CREATE TABLE juki.households (setai_no bigint PRIMARY KEY, head bigint)")
        conn.execute(
            "INSERT INTO juki.residents SELECT i, '住民' || i, 'ジュウミン' || i, "
            "'茨城県猿島郡五霞町小福田' || (i %% 900) FROM generate_series(1, %s) i",
            (residents,),
        )
        conn.execute("INSERT INTO juki.households SELECT i, i * 2 FROM generate_series(1, %s) i", (residents // 2,))


# Enough rows for ~40 chunks: the three regions a day's change touches (rows updated in the
# middle, their new versions and a new row at the end) stay well under a third of the bytes
# whatever chunk boundaries the repository's secret gives. With ~15 chunks they sometimes did not.
RESIDENTS = 500_000


def test_backup_restore_verifies_rows(repo, postgres: PostgresServer) -> None:
    source = postgres.create_database("goka_juki")
    seed(source, RESIDENTS)
    households = RESIDENTS // 2
    first = run_backup(repo, BackupRequest(parse_source(f"postgres:{source}"), system="goka-juki", tenant="goka"))
    assert first.tables == {"juki.residents": RESIDENTS, "juki.households": households}
    newborn = RESIDENTS + 1
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE juki.residents SET addr = addr || '番地' WHERE atena_no BETWEEN 5000 AND 5100")
        conn.execute(
            "INSERT INTO juki.residents VALUES (%s, '新生児', 'シンセイジ', '茨城県猿島郡五霞町川妻1')", (newborn,)
        )
    second = run_backup(repo, BackupRequest(parse_source(f"postgres:{source}"), system="goka-juki", tenant="goka"))
    assert second.tables["juki.residents"] == RESIDENTS + 1
    assert second.bytes_added < first.bytes_added / 3, "an uncompressed dump must deduplicate across days"

    target = postgres.create_database("goka_juki_drill")
    snap = find_snapshot(repo, "latest:goka-juki")
    result = restore_postgres(repo, snap, target)
    assert result.tables == {"juki.residents": RESIDENTS + 1, "juki.households": households}
    assert result.table_mismatches == {}
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT name FROM juki.residents WHERE atena_no = %s", (newborn,)).fetchone() == ("新生児",)


def test_restore_into_a_non_empty_database_fails_and_commits_nothing(repo, postgres: PostgresServer) -> None:
    source = postgres.create_database("naka_kaigo")
    seed(source, 100)
    run_backup(repo, BackupRequest(parse_source(f"postgres:{source}"), system="naka-kaigo"))
    target = postgres.create_database("naka_kaigo_busy")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA juki")
        conn.execute("CREATE TABLE juki.marker (x int)")
    with pytest.raises(RepositoryError, match=r"pg_restore .* failed"):
        restore_postgres(repo, find_snapshot(repo, "latest:naka-kaigo"), target)
    with psycopg.connect(target) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='juki'").fetchall()
    assert tables == [("marker",)], "a failed restore must leave the target as it was"


def test_unreachable_database_is_one_clear_error(repo, postgres: PostgresServer) -> None:
    dsn = f"postgresql://nobody:hunter2@127.0.0.1:{postgres.port}/missing_db"
    with pytest.raises(SourceError) as err:
        run_backup(repo, BackupRequest(parse_source(f"postgres:{dsn}")))
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value)


def test_dsn_redaction() -> None:
    assert redact_dsn("postgresql://u:pw@h:5432/db") == "postgresql://u@h:5432/db"
    assert redact_dsn("host=h password=pw dbname=x") == "host=h password=*** dbname=x"
