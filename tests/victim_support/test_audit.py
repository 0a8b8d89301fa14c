"""The hash-chained audit log detects edited, removed and reordered entries and names the first."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from dc.errors import UsageError
from dc.state import open_state
from victim_support.audit import (
    GENESIS,
    append,
    audit_log,
    audited,
    head,
    parse_anchor,
    read_entries,
    verify_entries,
    verify_log,
)


@pytest.fixture
def log(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    for i in range(1, 6):
        audited(engine, lambda c, i=i: append(c, actor="op", action="test", subject=f"s{i}", details={"n": i}))
    return engine


def test_an_intact_chain_verifies(log) -> None:  # type: ignore[no-untyped-def]
    report = verify_log(log)
    assert report.ok and report.entries == 5 and report.head_seq == 5
    entries = read_entries(log)
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert head(log) == (5, entries[-1].hash)


def test_an_edited_entry_is_named(log) -> None:  # type: ignore[no-untyped-def]
    with log.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(details='{"n":33}'))
    report = verify_log(log)
    assert not report.ok and report.first_bad_seq == 3
    assert "entry 3" in report.problem and "edited" in report.problem  # type: ignore[operator]


def test_a_removed_entry_is_named(log) -> None:  # type: ignore[no-untyped-def]
    with log.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    report = verify_log(log)
    assert not report.ok and report.first_bad_seq == 3
    assert "entry 2 is missing" in report.problem  # type: ignore[operator]


def test_reordered_entries_are_detected() -> None:
    from dc.state import open_state

    engine = open_state("sqlite://", create=True)
    for i in range(4):
        audited(engine, lambda c, i=i: append(c, actor="op", action="t", subject=str(i), details={}))
    entries = read_entries(engine)
    swapped = [entries[0], replace(entries[2], seq=2), replace(entries[1], seq=3), entries[3]]
    report = verify_entries(swapped)
    assert not report.ok and report.first_bad_seq == 2


def test_a_rewritten_tail_is_caught_by_an_anchor(log) -> None:  # type: ignore[no-untyped-def]
    anchor = head(log)
    with log.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq >= 4))
    assert verify_log(log).ok  # a truncated chain is still a chain …
    report = verify_log(log, anchor)  # … but not the one the partner holds
    assert not report.ok and "entries were removed" in report.problem  # type: ignore[operator]
    audited(log, lambda c: append(c, actor="x", action="forged", subject="s4", details={}))
    audited(log, lambda c: append(c, actor="x", action="forged", subject="s5", details={}))
    report = verify_log(log, anchor)
    assert not report.ok and report.first_bad_seq == 5 and "rewritten" in report.problem  # type: ignore[operator]


def append_concurrently(url: str, per_writer: int) -> None:
    """Two controllers (engines) appending at once to one control database."""
    import threading

    engines = [open_state(url, create=True), open_state(url, create=True)]

    def writer(engine) -> None:  # type: ignore[no-untyped-def]
        for i in range(per_writer):
            audited(engine, lambda c, i=i: append(c, actor="op", action="t", subject=str(i), details={}))

    threads = [threading.Thread(target=writer, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify_log(engines[0])
    assert report.ok and report.entries == 2 * per_writer


def test_appends_from_two_engines_never_fork_the_chain(tmp_path: Path) -> None:
    append_concurrently(f"sqlite:///{tmp_path / 'control.db'}", 15)


def test_anchor_parsing() -> None:
    assert parse_anchor("4:" + "a" * 64) == (4, "a" * 64)
    for bad in ("4", "x:" + "a" * 64, "4:abc", "4:" + "G" * 64):
        with pytest.raises(UsageError, match="invalid anchor"):
            parse_anchor(bad)
