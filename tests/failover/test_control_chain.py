"""The audit chain across a failover: the promotion entry names the last entry received, and the
entries lost with the primary are exactly those after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from dc.audit import read_entries, verify_log
from dc.continuation import PROMOTED
from dc.state import open_state


def _chain(path: Path, count: int) -> Engine:
    from dc.audit import append, audited

    engine = open_state(f"sqlite:///{path}", create=True)
    for i in range(count):
        audited(engine, lambda conn, i=i: append(conn, actor="op", action="token.issued", subject=f"p{i}", details={}))
    return engine


def test_a_promotion_entry_that_names_another_received_head_breaks_the_chain(tmp_path: Path) -> None:
    """Whoever rewrites the chain to move or edit the failover's entry is caught, even with hashes recomputed."""
    from dc.audit import append, audited
    from dc.auditentry import entry_hash

    engine = _chain(tmp_path / "c.db", 3)
    head = read_entries(engine)[-1]
    honest = {"source": "restored", "site": "offsite", "from_site": "primary", "received_seq": 3}
    audited(
        engine,
        lambda conn: append(
            conn, actor="op", action=PROMOTED, subject="r", details={**honest, "received_hash": head.hash}
        ),
    )
    assert verify_log(engine).ok
    with engine.begin() as conn:  # claim fewer entries were received, and re-hash the entry
        from dc.audit import audit_log

        entry = read_entries(engine)[-1]
        details = json.dumps({**json.loads(entry.details), "received_seq": 2}, sort_keys=True, separators=(",", ":"))
        digest = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.subject, details, entry.prev_hash)
        conn.execute(audit_log.update().where(audit_log.c.seq == entry.seq).values(details=details, hash=digest))
    report = verify_log(engine)
    assert (
        not report.ok
        and report.first_bad_seq == 4
        and "names entry 2 as the last one received" in (report.problem or "")
    )


@settings(max_examples=25, derandomize=True, deadline=None)
@given(received=st.integers(0, 6), after=st.integers(0, 4))
def test_the_recovered_chain_names_exactly_the_entries_after_the_received_head(
    tmp_path_factory: pytest.TempPathFactory, received: int, after: int
) -> None:
    from dataclasses import replace

    from dc.continuation import Gap, lost_entries

    folder = tmp_path_factory.mktemp("chain")
    theirs = read_entries(_chain(folder / "primary.db", received + after))
    ours = theirs[:received]
    gap = Gap(received + 1, "offsite", "primary", "restored", received, None, None, None, 1.0)
    lost = lost_entries(gap, ours, theirs)
    assert [e.seq for e in lost] == list(range(received + 1, received + after + 1))
    assert replace(gap, lost=lost).statement().startswith(f"{after} entr")
    if received:
        other = read_entries(_chain(folder / "other.db", received + after))  # same shape, another chain
        with pytest.raises(ValueError, match="not the same chain"):
            lost_entries(gap, ours, other)
