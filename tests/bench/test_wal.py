"""``make bench``'s PostgreSQL phase end to end at the smallest scale: both tools drain the same
backlog of real pgbench WAL in both modes, then a real primary archives through both under
pgbench, both take base backups and restore to one target time. It must run on a fresh checkout
as it is; whether bcpctl wins is bench day's question."""

from __future__ import annotations

import json

import pytest

from bench.wal import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_the_wal_benchmark_compares_both_tools_on_the_same_segments_and_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "wal.json"
    code = main(["--scale", "1", "--seconds", "8", "--backlog", "2", "--rounds", "1", "--out", str(out)])
    results = json.loads(out.read_text())
    assert code == (0 if all(results["pass"].values()) else 1)
    drains = results["push"]
    # every tool drained the very same backlog in each mode, each segment stored, nothing failed
    assert drains["segments"] >= 2
    assert sorted((r["tool"], r["mode"]) for r in drains["runs"]) == [
        ("bcpctl", "async"), ("bcpctl", "sync"), ("pgbackrest", "async"), ("pgbackrest", "sync"),
    ]  # fmt: skip
    for one in drains["runs"]:
        assert one["segments"] == drains["segments"]
        assert one["failures"] == []
        assert one["cpu_seconds"] > 0 and one["stored_mib"] > 0
    restore = results["restore"]
    assert restore["archive_failures"] == []
    rto = restore["restore_to_time"]
    # both replayed to the same last transaction before the one target time
    assert rto["bcpctl"]["recovered_to"] == rto["pgbackrest"]["recovered_to"] is not None
    assert rto["bcpctl"]["recovered_to"] <= restore["target_time"]
    assert restore["unlock_seconds"] > 0
    printed = capsys.readouterr().out
    assert "archive push and restore-to-time at least as fast as pgBackRest: " in printed
    assert "sync segments/s" in printed and "async CPU ms/segment" in printed
