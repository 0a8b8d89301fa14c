"""Rendering results: rich tables and progress bars on a terminal, JSON for scripts.

Core packages return data and report progress through callbacks; this module is the only
place that decides how either reaches the user. With ``--json`` stdout carries exactly one
JSON document and nothing else (a long list written item by item, :meth:`Output.stream`), or,
for a command that runs until stopped, one JSON object per line (:meth:`Output.event`);
progress and notices go to stderr and only on a TTY.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # rich loads on first use: a --json run never draws
    from rich.console import Console
    from rich.progress import Progress


_PLAIN = frozenset({str, int, float, bool, type(None)})

#: the standard file descriptors bcpctl was started without (:func:`claim_standard_streams`)
_STARTED_CLOSED: set[int] = set()


def claim_standard_streams() -> None:
    """Open the null device on each of file descriptors 0-2 that bcpctl was started without
    (``bcpctl … >&-``, a careless parent).

    A free low number goes to the next file opened: a child's writes to its stdout (pg_dump,
    pg_restore, ssh) would land in a restored file or the control database, and every result
    written to ``sys.stdout`` (``None`` then) would end as an internal error after the work was
    done. Results then go nowhere, as with ``>/dev/null``; ``dump`` asks for ``--output``
    (:func:`stdout_closed`).
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            if null != fd:
                os.dup2(null, fd, inheritable=True)
                os.close(null)
            else:
                os.set_inheritable(fd, True)
            _STARTED_CLOSED.add(fd)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", closefd=False))  # noqa: SIM115


def stdout_closed() -> bool:
    """True when bcpctl was started without a stdout (its results go to the null device)."""
    return 1 in _STARTED_CLOSED


def to_jsonable(value: Any) -> Any:
    """Dataclasses, pydantic models, datetimes and paths as plain JSON values."""
    if type(value) in _PLAIN:  # most leaves: a listing of millions converts each of its fields
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def jst(value: str | None) -> str:
    """A time of a result, as its JSON form holds it (ISO 8601), the way people read it: ``YYYY-MM-DD HH:MM JST``."""
    from dc.clock import jst_text

    return jst_text(value)


class Output:
    """How one command invocation talks to its user."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.warnings: list[str] = []

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True)

    @cached_property
    def interactive(self) -> bool:
        return not self.json_mode and _may_be_terminal(sys.stderr) and self.err.is_terminal

    def result(self, data: Any, render: Callable[[Console, Any], None] | None = None) -> None:
        """Emit the command's result: JSON on stdout, or ``render`` for people."""
        plain = to_jsonable(data)
        if self.warnings and isinstance(plain, dict):
            plain = {**plain, "warnings": [*plain.get("warnings", ()), *self.warnings]}
        if self.json_mode or render is None:
            sys.stdout.write(json.dumps(plain, ensure_ascii=False, indent=2) + "\n")
            sys.stdout.flush()
        else:
            render(self.console, plain)

    def line(self, data: Any, text: Callable[[Any], str]) -> None:
        """:meth:`result` for a result whose human form is the one line ``text(plain data)``.

        Written as it is when stdout cannot be a terminal: rich's import is ~45 ms of CPU,
        a tenth of a restore's start-up on one core, and a pipe gets no colour from it.
        """
        if self.json_mode or _may_be_terminal(sys.stdout):
            self.result(data, lambda console, plain: console.print(text(plain), markup=False))
            return
        sys.stdout.write(text(to_jsonable(data)) + "\n")
        sys.stdout.flush()

    def stream(
        self,
        head: dict[str, Any],
        key: str,
        items: Iterable[Any],
        render: Callable[[Console, dict[str, Any], Iterator[Any]], None],
    ) -> None:
        """Emit a result whose ``key`` list may hold millions of items, never holding them all.

        ``--json`` writes the same one document :meth:`result` would (``head``'s fields, then
        ``key`` with one item per line, then any ``warnings``), item by item as ``items``
        yields them; people get ``render(console, head, items)`` with the items as plain
        values, which must print them as they come. An error while items are read leaves an
        unfinished document on stdout and a non-zero exit: scripts must check the exit code.
        """
        plain = to_jsonable(head)
        rows = (to_jsonable(item) for item in items)
        if not self.json_mode:
            render(self.console, plain, rows)
            return
        write = sys.stdout.write
        opening = json.dumps(plain, ensure_ascii=False, indent=2)[:-1].rstrip()
        write(opening + ("," if plain else "") + f"\n  {json.dumps(key)}: [")
        written = 0
        for row in rows:
            write(("," if written else "") + "\n    " + json.dumps(row, ensure_ascii=False))
            written += 1
        write("\n  ]" if written else "]")
        if self.warnings:
            write(',\n  "warnings": ' + json.dumps(self.warnings, ensure_ascii=False))
        write("\n}\n")
        sys.stdout.flush()

    def event(self, data: Any, render: Callable[[Console, Any], None]) -> None:
        """One event of a command that runs until stopped (``replicate --follow``).

        ``--json`` writes each event as one compact JSON object on its own line (JSON Lines),
        flushed at once so a supervisor reading the pipe sees it; people get ``render``.
        """
        plain = to_jsonable(data)
        if self.json_mode:
            sys.stdout.write(json.dumps(plain, ensure_ascii=False, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        else:
            render(self.console, plain)

    def warn(self, message: str) -> None:
        """Something the command passed over that its user must hear about, even from a script.

        One line on stderr in every mode (stdout stays one JSON document), and in ``--json``
        also under ``"warnings"`` when the result is a JSON object.
        """
        line = " ".join(message.split()) or "warning"
        self.warnings.append(line)
        sys.stderr.write(f"bcpctl: warning: {line}\n")
        sys.stderr.flush()

    def notice(self, message: str) -> None:
        """A line for people (stderr), suppressed in JSON mode."""
        if not self.json_mode:
            self.err.print(message, markup=False)

    @contextmanager
    def progress(self, description: str, total: float | None = None, *, unit: str = "bytes") -> Iterator[ProgressBar]:
        """A progress bar on a terminal; a no-op for pipes, CI logs and ``--json``."""
        if not self.interactive:
            yield ProgressBar(None, None)
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if unit == "bytes":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        columns.append(TimeRemainingColumn())  # "-:--:--" until a total is known
        # No refresh thread: a process with a second thread cannot safely fork its readers.
        with Progress(*columns, console=self.err, transient=True, auto_refresh=False) as bar:
            task = bar.add_task(description, total=total)
            yield ProgressBar(bar, task)


class ProgressBar:
    """The handle core callbacks are adapted to; safe to call from worker threads."""

    #: seconds between redraws (the bar has no refresh thread of its own)
    INTERVAL = 0.1

    def __init__(self, bar: Progress | None, task: Any) -> None:
        self._bar = bar
        self._task = task
        self._drawn = 0.0

    def _redraw(self) -> None:
        now = time.monotonic()
        if self._bar is not None and now - self._drawn >= self.INTERVAL:
            self._drawn = now
            self._bar.refresh()

    def advance(self, amount: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, amount)
            self._redraw()

    def update(
        self, *, completed: float | None = None, total: float | None = None, description: str | None = None
    ) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=total, description=description)
            self._redraw()


def _may_be_terminal(stream: Any) -> bool:
    """False where rich's ``Console.is_terminal`` is certainly false, decided without importing rich."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return True  # rich decides from these
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream: rich says False too
        return False


def current() -> Output:
    """The :class:`Output` of the running command (set up by the common options)."""
    ctx = click.get_current_context()
    out = ctx.meta.get("bcpctl.output")
    if out is None:
        out = ctx.meta["bcpctl.output"] = Output(bool(ctx.meta.get("bcpctl.json")))
    return out
