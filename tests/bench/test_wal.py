"""``make bench``'s PostgreSQL phase end to end at the smallest scale: a real primary archiving
through bcpctl and pgBackRest under pgbench, both base backups, both restores to one target
time. It must run on a fresh checkout as it is; whether bcpctl wins is bench day's question."""

from __future__ import annotations

import json

import pytest

from bench.wal import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_the_wal_benchmark_compares_both_tools_on_the_same_segments_and_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "wal.json"
    code = main(["--scale", "1", "--seconds", "8", "--out", str(out)])
    results = json.loads(out.read_text())
    assert code == (0 if all(results["pass"].values()) else 1)
    push, rto = results["push"], results["restore_to_time"]
    assert push["bcpctl"]["segments"] == push["pgbackrest"]["segments"] >= 1
    assert results["archive_failures"] == []
    # both replayed to the same last transaction before the one target time
    assert rto["bcpctl"]["recovered_to"] == rto["pgbackrest"]["recovered_to"] is not None
    assert rto["bcpctl"]["recovered_to"] <= results["target_time"]
    assert results["unlock_seconds"] > 0
    printed = capsys.readouterr().out
    assert "archive push and restore-to-time at least as fast as pgBackRest: " in printed
    assert ("PASS" in printed) or ("FAIL" in printed)
