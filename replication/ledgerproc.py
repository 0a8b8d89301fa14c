"""The replication ledger in a forked helper process, for a ``bcpctl replicate`` started by hand.

A replication run must read the pinned manifest key from the control database before it may
send anything, and it must open the target first: importing SQLAlchemy and opening the
database take ~0.4 s, importing botocore and building the S3 client as long, each one core
of Python that cannot overlap the other in one process. Forked before either starts, a helper
opens the ledger on the second core while this process opens the target; the run then asks
it through a pipe (a handful of calls per run), and the answer to the first is usually ready.

Only for one-shot CLI runs, forked before this process starts any thread. The scheduler
(``serve``) keeps the in-process :class:`~replication.ledger.Ledger`: forking a process full
of threads is not safe, and it pays the import once.

The helper ignores SIGINT (the parent decides what an interrupt means) and exits when the
pipe closes, so it never outlives a parent that was killed.
"""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection, Pipe
from typing import TYPE_CHECKING, Any

from dc.errors import BcpError, unreachable_database

if TYPE_CHECKING:
    from types import TracebackType

    from replication.ledger import Ledger


class LedgerProcess:
    """Calls :class:`~replication.ledger.Ledger` methods in a helper process; use as a context manager."""

    def __init__(self, state_url: str | None = None) -> None:
        self._state_url = state_url
        self._conn: Connection | None = None
        self._pid = 0

    def __enter__(self) -> Ledger:
        ours, theirs = Pipe()
        pid = os.fork()
        if pid == 0:  # the helper: never returns into the caller's code
            status = 0
            try:
                ours.close()
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _serve(theirs, self._state_url)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        theirs.close()
        self._conn, self._pid = ours, pid
        return self  # type: ignore[return-value]  # duck-typed: every Ledger method, forwarded

    @property
    def pid(self) -> int:
        """The helper's process id (0 before the with-block)."""
        return self._pid

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is None:
            return
        self._conn.close()  # the helper sees EOF and exits
        self._conn = None
        os.waitpid(self._pid, 0)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, args, kwargs)

        return call

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._conn is None:
            raise RuntimeError("LedgerProcess used outside its with-block")
        try:
            self._conn.send((name, args, kwargs))
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            raise BcpError("the control-database helper process exited unexpectedly") from None
        if not ok:
            raise value
        return value


def _serve(conn: Connection, state_url: str | None) -> None:
    """Open the ledger, then answer calls until the parent closes the pipe."""
    ledger: Ledger | None = None
    failure: BaseException | None = None
    try:
        from dc.state import open_state
        from replication.ledger import Ledger

        ledger = Ledger(open_state(state_url))
    except Exception as exc:
        failure = exc if isinstance(exc, BcpError) else unreachable_database(exc) or exc
    while True:
        try:
            name, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            if failure is not None:
                raise failure
            if name.startswith("_") or not callable(getattr(ledger, name, None)):
                raise AttributeError(f"Ledger has no method {name!r}")
            answer: tuple[bool, Any] = (True, getattr(ledger, name)(*args, **kwargs))
        except BcpError as exc:
            answer = (False, exc)
        except Exception as exc:
            shown = unreachable_database(exc) or RuntimeError(f"control database: {type(exc).__name__}: {exc}")
            answer = (False, shown)
        conn.send(answer)
