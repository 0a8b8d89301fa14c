"""Switching a SQLite database to WAL when other connections may be opening it at the same instant.

The switch reads the file under a shared lock and then needs an exclusive one. Two connections
doing it at once would wait for each other, so SQLite answers one of them "database is locked"
at once instead of calling its busy handler (the ``timeout`` of :func:`sqlite3.connect` does not
apply). Workers that open one fresh cache together hit it (1 round in 20 of four threads): the
switch is tried again until the other connection has finished, up to the connection's timeout.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Protocol

#: first pause between tries; doubled up to :data:`_LONGEST_PAUSE`
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.2


class _Connection(Protocol):
    def cursor(self) -> Any: ...


def use_wal(conn: _Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL`` on ``conn`` (a DB-API connection of :mod:`sqlite3`), tried
    again while another connection holds the lock, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        cursor = conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
