"""Connections opening one fresh SQLite file at the same instant all get it in WAL mode.

SQLite answers one of two connections switching to WAL at once "database is locked" without
waiting (its busy handler would deadlock): two ``serve --queue`` workers starting their first
backups together failed one of them that way.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from backup.cache import BlobCache
from dc.sqlitewal import use_wal
from dc.state import connect

OPENERS = 4
ROUNDS = 60


def _together(open_one: Callable[[], None]) -> list[BaseException]:
    barrier = threading.Barrier(OPENERS)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            open_one()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_caches_opened_together_on_a_fresh_file_all_open(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        path = tmp_path / str(n) / "index.sqlite"
        assert _together(lambda path=path: BlobCache(path).close()) == []
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_control_databases_opened_together_on_a_fresh_file_all_connect(tmp_path: Path) -> None:
    for n in range(ROUNDS // 3):
        url = f"sqlite:///{tmp_path / f'{n}.db'}"

        def open_one(url: str = url) -> None:
            engine = connect(url, create=True)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()

        assert _together(open_one) == []


def test_another_error_is_not_waited_on(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.sqlite")
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        use_wal(db, 30.0)
