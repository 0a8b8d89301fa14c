"""The replication ledger of one run, its database layer loading beside the run's first network work.

A one-shot ``bcpctl replicate`` asks the control database one question before it can verify
and copy anything — the repository's pinned manifest key — and writes its records only once
the objects are across. Loading SQLAlchemy and checking the schema took a sizeable share of
such a run's CPU before any of the work began; here they run in a background thread while
the pin is read through :func:`dc.statepeek.open_at_head`, which answers only where the full
open would answer the same (a SQLite file at the schema's head) and otherwise leaves the
question, and any refusal, to the full open. Every write waits for the full ledger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from dc.statepeek import open_at_head
from replication.records import Pin, SystemLag

if TYPE_CHECKING:
    from replication.ledger import Ledger


def open_ledger(state_url: str | None = None) -> Ledger:
    """The replication ledger in the control database (SQLAlchemy is imported here, when needed)."""
    from dc.state import open_state
    from replication.ledger import Ledger

    return Ledger(open_state(state_url))


class OpeningLedger:
    """:class:`~replication.ledger.Ledger`'s calls for a replication run, on a ledger still being opened."""

    def __init__(self, state_url: str | None = None) -> None:
        self._state_url = state_url
        pool = ThreadPoolExecutor(1, thread_name_prefix="bcp-ledger")
        self._opening = pool.submit(open_ledger, state_url)
        pool.shutdown(wait=False)  # the thread ends when the ledger is open

    def opened(self) -> Ledger:
        """The full ledger, once open; what its opening raised (a missing or older database) is raised here."""
        return self._opening.result()

    def pin(self, repository: str) -> Pin | None:
        conn = open_at_head(self._state_url)
        if conn is None:
            return self.opened().pin(repository)
        with contextlib.closing(conn):
            row = conn.execute(
                "SELECT public_key, sequence, manifest_sha256 FROM replication_pins WHERE repository = ?",
                (repository,),
            ).fetchone()
        return Pin(repository, *row) if row else None

    def set_pin(self, pin: Pin, now: datetime) -> None:
        self.opened().set_pin(pin, now)

    def pending_deletes(self, target: str) -> dict[str, datetime]:
        return self.opened().pending_deletes(target)

    def mark_missing(self, target: str, keys: Iterable[str], now: datetime) -> None:
        self.opened().mark_missing(target, keys, now)

    def clear_missing(self, target: str, keys: Iterable[str]) -> None:
        self.opened().clear_missing(target, keys)

    def locks(self, target: str) -> dict[str, datetime]:
        return self.opened().locks(target)

    def record_locks(self, target: str, until: dict[str, datetime]) -> None:
        self.opened().record_locks(target, until)

    def forget_locks(self, target: str, keys: Iterable[str]) -> None:
        self.opened().forget_locks(target, keys)

    def record_lag(self, source: str, target: str, lags: Iterable[SystemLag], now: datetime) -> None:
        self.opened().record_lag(source, target, lags, now)

    def record_run(self, **values: object) -> None:
        self.opened().record_run(**values)
