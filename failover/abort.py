"""Stopping a run on purpose: Ctrl-C, SIGTERM, a timeout, or production's health check failing.

Zerto rolls a test back after a timeout; Litmus's ``stopOnFailure`` famously did not stop
anything until late 2025 (litmus#4991). Here every way of stopping sets one
:class:`AbortSignal`; the restore path checks it before every blob it reads, so an abort
lands mid-restore within one blob, and the run's ``finally`` always runs the cleanup. A
second signal during cleanup is noted and ignored: cutting cleanup short is exactly the
failure mode this module exists to avoid (SIGKILL cannot be caught; the next run sweeps).
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from dc.errors import N_, Message, os_reason
from failover.errors import DrillAborted
from failover.settings import SteadyState

#: what ``signal.signal`` takes and returns (typeshed's ``signal._HANDLER``)
SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class AbortSignal:
    """Set once, from any thread or a signal handler; the first reason wins."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None
        self.ignored: list[str] = []

    def trigger(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            else:
                self.ignored.append(reason)
        self._event.set()

    @property
    def triggered(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`DrillAborted` if the run has been told to stop."""
        if self._event.is_set():
            raise DrillAborted(self.reason or Message(N_("stopped")))

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


def run_probe(probe: SteadyState) -> tuple[bool, str]:
    """Run the steady-state command; ``(ok, one line)``: a Message where bcpctl words it, so the
    stored run reads it in its reader's language (the command's own last line stays as it said)."""
    try:
        done = subprocess.run(
            shlex.split(probe.command), capture_output=True, text=True, timeout=probe.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return False, Message(N_("no answer within {timeout}s"), timeout=probe.timeout)
    except OSError as exc:
        return False, Message(N_("cannot run: {reason}"), reason=os_reason(exc))
    tail = (done.stderr or done.stdout or "").strip().splitlines()
    detail = tail[-1] if tail else Message(N_("exit {returncode}"), returncode=done.returncode)
    return done.returncode == 0, detail


@contextmanager
def watch(
    abort: AbortSignal,
    *,
    timeout: float | None = None,
    probe: SteadyState | None = None,
    handle_signals: bool = True,
) -> Iterator[AbortSignal]:
    """Arm the signal handlers, the timeout and the probe watcher for the duration of a run."""
    previous: dict[signal.Signals, SignalHandler] = {}
    in_main = threading.current_thread() is threading.main_thread()
    if handle_signals and in_main:

        def handler(signum: int, _frame: object) -> None:
            abort.trigger(Message(N_("received {signal}"), signal=signal.Signals(signum).name))

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    if timeout is not None:
        timer = threading.Timer(
            timeout, lambda: abort.trigger(Message(N_("timeout after {seconds}s"), seconds=f"{timeout:g}"))
        )
        timer.daemon = True
        timer.start()
        threads.append(timer)
    if probe is not None:

        def watcher() -> None:
            while not stop.wait(probe.interval):
                ok, detail = run_probe(probe)
                if not ok and not stop.is_set():
                    abort.trigger(Message(N_("steady-state probe failed: {detail}"), detail=detail))
                    return

        thread = threading.Thread(target=watcher, name="bcp-steady-state", daemon=True)
        thread.start()
        threads.append(thread)
    try:
        yield abort
    finally:
        stop.set()
        for thread in threads:
            if isinstance(thread, threading.Timer):
                thread.cancel()
        for signum, old in previous.items():
            if old is not None:  # None: not installed from Python, so it cannot be put back
                signal.signal(signum, old)
