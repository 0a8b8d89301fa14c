"""The snapshot index answers from an SQLite index, whatever the number of rows: every query
``newest``/``latest``/``of_group`` run is planned as a search of one of the index's own indexes,
never a scan of the table nor a sort of a group's rows; and ``newest`` is the brute-force answer."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.repository import Repository
from backup.snapindex import SnapshotIndex
from backup.snapshot import Snapshot, list_snapshots, save_snapshot

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _plant(repo: Repository, system: str | None, minutes: int, source: str) -> Snapshot:
    snap = Snapshot(
        time=T0 + timedelta(minutes=minutes),
        hostname="h",
        username="u",
        source_kind="path",
        source_spec=source,
        tree=("0" * 64,),
        system=system,
    )
    return save_snapshot(repo, snap)


def _traced(db: sqlite3.Connection, ask: list[tuple[str, tuple[object, ...]]], index: SnapshotIndex) -> list[str]:
    """The statements on ``snapshot_rows`` that the questions in ``ask`` run, with their values."""
    seen: list[str] = []
    db.set_trace_callback(lambda sql: seen.append(sql) if "snapshot_rows" in sql else None)
    try:
        for method, args in ask:
            getattr(index, method)(*args)
    finally:
        db.set_trace_callback(None)
    return seen


def test_every_question_is_a_search_of_an_index_not_a_scan_or_a_sort(repo: Repository) -> None:
    db = repo.cache.connection()
    SnapshotIndex(repo)
    # a cache written by an older version: its index on (grp, time_us) is what the planner
    # would pick, and it cannot order ties by id
    db.execute("CREATE INDEX IF NOT EXISTS snapshot_rows_by_group ON snapshot_rows(grp, time_us)")
    for i in range(12):
        _plant(repo, f"sys{i % 3}", i, f"/srv/{i % 2}")
    index = SnapshotIndex(repo)
    index.sync()
    ask: list[tuple[str, tuple[object, ...]]] = [
        ("newest", ("sys0",)),
        ("newest", ("sys0", "path:/srv/0")),
        ("newest", ("sys1", "path:/never")),
        ("latest", ("sys2",)),
        ("latest", (None,)),
        ("of_group", ("sys1",)),
    ]
    statements = [s for s in _traced(db, ask, index) if s.lstrip().upper().startswith("SELECT")]
    assert len(statements) >= len(ask)
    for sql in statements:
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING" in plan and "snapshot_rows_by_" in plan, (sql, plan)
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, (sql, plan)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    history=st.lists(
        st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 6), st.sampled_from(["/s1", "/s2"])),
        max_size=16,
    )
)
def test_newest_is_the_brute_force_answer(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str | None, int, str]]
) -> None:
    """Ties in time, systems without a name (grouped by source), several sources per system."""
    from backup.opening import init_repository, open_repository
    from storage.local import LocalBackend
    from tests.backup.conftest import FAST_KDF
    from tests.conftest import PASSWORD

    where = tmp_path_factory.mktemp("r") / "repo"
    init_repository(LocalBackend(where, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(where), PASSWORD) as repo:
        for system, minute, source in history:
            _plant(repo, system, minute, source)
        index = SnapshotIndex(repo)
        index.sync()
        every = list_snapshots(repo)
        groups = {s.group for s in every} | {"a", "absent"}
        for group in groups:
            for source in (None, "path:/s1", "path:/s2", "path:/never"):
                fits = [
                    s
                    for s in every
                    if s.group == group and (source is None or f"{s.source_kind}:{s.source_spec}" == source)
                ]
                expected = max(fits, key=lambda s: (s.time, s.id), default=None)
                found = index.newest(group, source)
                assert (found.id if found else None) == (expected.id if expected else None), (group, source)
