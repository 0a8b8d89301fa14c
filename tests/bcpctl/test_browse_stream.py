"""ls and find on huge snapshots: rows and JSON items leave as they come, nothing is gathered."""

from __future__ import annotations

import io
import json
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bcpctl.commands.browse import render_listing, render_matches
from bcpctl.output import Output
from bcpctl.tables import Rows

#: two listing sizes: streaming keeps the peak flat from one to the other, holding would add
#: ~0.5 KiB per entry (~4.5 MB between them)
SMALL, LARGE = 3_000, 12_000
#: what the larger listing may add to the smaller one's peak
GROWTH = 512 * 1024


def _entry(i: int) -> dict[str, Any]:
    return {
        "path": f"srv/share/dept-{i % 300:03d}/file-{i:07d}.xlsx",
        "type": "file",
        "mode": "-rw-r--r--",
        "size": i * 977,
        "mtime": "2026-12-06T01:02:03+00:00",
        "uid": 1000 + i % 7,
        "gid": 100,
        "target": None,
        "path_b64": None,
    }


def _entries(n: int) -> Iterator[dict[str, Any]]:
    return (_entry(i) for i in range(n))


def _matches(n: int) -> Iterator[dict[str, Any]]:
    snap = "ab" * 32
    return ({"snapshot": snap, "time": "2026-12-06T01:00:00+00:00", "system": "fs", "entry": e} for e in _entries(n))


def _flat(run: Callable[[int], None]) -> None:
    """The peak of ``run(LARGE)`` is the peak of ``run(SMALL)``, give or take :data:`GROWTH`."""
    small, large = _peak(lambda: run(SMALL)), _peak(lambda: run(LARGE))
    assert large < small + GROWTH, f"peak grew from {small:,} to {large:,} bytes with the number of entries"


def _peak(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def devnull() -> Iterator[io.TextIOWrapper]:
    with open(os.devnull, "w", encoding="utf-8") as sink:
        yield sink


def test_people_get_every_row_in_bounded_memory(devnull: io.TextIOWrapper) -> None:
    console = Console(file=devnull, width=80, soft_wrap=True, highlight=False)
    consumed = iter(_matches(SMALL))
    render_matches(console, {"snapshots_searched": 1}, consumed, system_width=2)
    assert next(consumed, None) is None  # every match was drawn, none held
    _flat(lambda n: render_matches(console, {"snapshots_searched": 1}, _matches(n), system_width=2))
    _flat(lambda n: render_listing(console, {}, _entries(n), long=True))
    _flat(lambda n: render_listing(console, {}, _entries(n), long=False))


def test_json_of_every_item_is_written_in_bounded_memory(
    devnull: io.TextIOWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", devnull)
    out = Output(json_mode=True)
    _flat(lambda n: out.stream({"pattern": "*", "snapshots_searched": 1}, "matches", _matches(n), _never))


def _never(console: Console, head: dict[str, Any], rows: Iterator[Any]) -> None:
    raise AssertionError("--json never draws")


def test_rows_are_drawn_before_the_listing_ends() -> None:
    """The first line is out while the generator still has entries to give (no gathering)."""
    sink = io.StringIO()
    console = Console(file=sink, width=80, soft_wrap=True, highlight=False)
    seen: list[str] = []

    def entries() -> Iterator[dict[str, Any]]:
        for i in range(3):
            seen.append(sink.getvalue())
            yield _entry(i)

    render_listing(console, {}, entries(), long=True)
    assert "file-0000000.xlsx" not in seen[0] and "file-0000000.xlsx" in seen[1] and "file-0000001" in seen[2]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3), max_leaves=8
)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    head=st.dictionaries(st.sampled_from(["snapshot", "path", "path_b64", "n"]), json_values, max_size=4),
    items=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=5),
    warnings=st.lists(st.text(min_size=1, alphabet="abc xyz"), max_size=2),
)
def test_streamed_json_is_the_document_result_would_write(
    head: dict[str, Any], items: list[dict[str, Any]], warnings: list[str]
) -> None:
    """The documented shape holds for every head and item list: head's fields, the list
    under its key, then any warnings: one JSON document, as :meth:`Output.result` writes."""
    streamed, whole = io.StringIO(), io.StringIO()
    for sink, emit in (
        (streamed, lambda out: out.stream(head, "entries", iter(items), _never)),
        (whole, lambda out: out.result({**head, "entries": items})),
    ):
        out = Output(json_mode=True)
        out.warnings = [" ".join(w.split()) for w in warnings if w.strip()]
        stdout, sys.stdout = sys.stdout, sink
        try:
            emit(out)
        finally:
            sys.stdout = stdout
    assert json.loads(streamed.getvalue()) == json.loads(whole.getvalue())
    assert streamed.getvalue().endswith("}\n") and streamed.getvalue().count("\n}\n") == 1


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    cells=st.lists(st.text(st.characters(categories=["L", "N", "P"]), max_size=30), min_size=4, max_size=4),
    widths=st.lists(st.integers(0, 12), min_size=3, max_size=3),
)
def test_rows_never_cut_a_cell(cells: list[str], widths: list[int]) -> None:
    sink = io.StringIO()
    console = Console(file=sink, width=20, soft_wrap=True, highlight=False)
    columns = [("a", widths[0]), ("size", widths[1]), ("c", widths[2]), ("path", 0)]
    Rows(console, columns, right={"size"}).add(*cells)
    line = sink.getvalue()
    assert line.count("\n") == 1
    assert line.rstrip("\n").endswith(cells[-1].rstrip()) or not cells[-1].strip()
    position = 0
    for cell in cells:
        position = line.index(cell, position) + len(cell)  # every cell whole and in order
