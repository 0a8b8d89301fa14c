"""A stored time that bcpctl never wrote reads as a named problem, never a bare ValueError or OverflowError.

SQLite keeps any text in a DATETIME column: an edit, or a damaged copy restored at the offsite,
reaches every reader. :class:`dc.state.UtcDateTime` turns what does not read back into
:class:`dc.state.StoredTimeInvalid`, and the readers of run records name the row.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from dc.state import READABLE_TIMES, StoredRowDamaged, StoredTimeInvalid, UtcDateTime, damaged_time, open_state
from failover import records

probe = Table("probe", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime))

#: text an edit may leave: garbage, times near datetime's limits, other formats, numbers
stored = st.one_of(
    st.text(max_size=40),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(str),
    st.sampled_from(["9999-12-31 23:59:59", "0001-01-01 00:00:00", "2026-02-30 00:00:00", "2026-12-06T07:19:45Z"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


@settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=stored)
def test_any_stored_value_reads_as_a_utc_time_or_a_named_problem(tmp_path: Path, value: object) -> None:
    path = tmp_path / "times.db"
    engine = open_state(f"sqlite:///{path}", create=True)
    try:
        probe.create(engine, checkfirst=True)
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM probe")
            conn.execute("INSERT INTO probe (id, at) VALUES (7, ?)", (value,))
        try:
            with engine.connect() as conn:
                got = conn.execute(select(probe.c.at)).scalar_one()
        except StoredTimeInvalid as exc:
            named = damaged_time(engine, probe)
            assert named is not None and named.exit_code == 1 and "\n" not in named.message
            assert named.message.startswith("the control database's probe row 7: at holds ")
            assert exc.value is not None
        else:
            assert got is not None and got.tzinfo is UTC and READABLE_TIMES[0] <= got < READABLE_TIMES[1]
            assert damaged_time(engine, probe) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("column", ["declared_at", "finished_at", "deadline"])
@pytest.mark.parametrize("value", ["garbage", "9999-12-31 23:59:59", "0001-01-01 00:00:00"])
def test_every_reader_of_run_records_names_the_row(tmp_path: Path, column: str, value: str) -> None:
    path = tmp_path / "control.db"
    engine = open_state(f"sqlite:///{path}", create=True)
    now = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(records.drill_runs).values(
                    id="run-1",
                    kind="failover",
                    mode="execute",
                    status="passed",
                    consortium="c",
                    declared_at=now,
                    finished_at=now,
                    deadline=now,
                    host="h",
                    pid=1,
                )
            )
        with sqlite3.connect(path) as conn:
            conn.execute(f"UPDATE drill_runs SET {column} = ?", (value,))
        readers = [
            lambda: records.list_runs(engine),
            lambda: records.get_run(engine, "run-1"),
            lambda: records.load_document(engine, "run-1"),
            lambda: records.last_handover(engine),
        ]
        for read in readers:
            with pytest.raises(StoredRowDamaged, match=f"drill_runs row run-1: {column} holds '{value}'"):
                read()
    finally:
        engine.dispose()
