"""The replication ledger of one run, its database layer loading beside the run's first network work.

A one-shot ``bcpctl replicate`` asks the control database one question before it can verify
and copy anything — the repository's pinned manifest key — and writes its records only once
the objects are across. Loading SQLAlchemy and checking the schema took a sizeable share of
such a run's CPU before any of the work began; here they run in a background thread, while
the pin is read through :func:`dc.statepeek.open_at_head`, which answers only where the full
open would answer the same (a SQLite file at the schema's head) and otherwise leaves the
question, and any refusal, to the full open. Every write waits for the full ledger.

The thread starts once the backends are open, not before: loading SQLAlchemy and botocore
both hold the GIL, so at the same time one only delays the other; beside the listings and
the uploads, which mostly wait on the network and the target, it costs the run little.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
    """:class:`~replication.ledger.Ledger`'s calls for a replication run, on a ledger still being opened.

    Constructed before the backends open: a database the look cannot answer for is opened the
    full way at once, so its refusal comes first, as it always did. Otherwise :meth:`start`
    (once the backends are open) loads the full ledger beside the listings and the copying.
    """

    def __init__(self, state_url: str | None = None) -> None:
        self._state_url = state_url
        self._look = open_at_head(state_url)
        self._ledger = open_ledger(state_url) if self._look is None else None
        self._opening: Future[Ledger] | None = None

    def start(self) -> None:
        """Begin opening the full ledger in a background thread (once; nothing to do if it is open)."""
        if self._ledger is None and self._opening is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="bcp-ledger")
            self._opening = pool.submit(open_ledger, self._state_url)
            pool.shutdown(wait=False)  # its one thread ends when the ledger is open

    def opened(self) -> Ledger:
        """The full ledger; what its opening raised is raised here."""
        if self._ledger is None:
            self.start()
            assert self._opening is not None
            self._ledger = self._opening.result()
        return self._ledger

    def pin(self, repository: str) -> Pin | None:
        if self._look is None:
            return self.opened().pin(repository)
        rows = self._look.execute(
            "SELECT public_key, sequence, manifest_sha256 FROM replication_pins WHERE repository = ?", (repository,)
        ).fetchall()  # all: the statement ends here and holds no read snapshot during the run
        return Pin(repository, *rows[0]) if rows else None

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
