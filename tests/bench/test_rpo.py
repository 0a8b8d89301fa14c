"""``make bench``'s RPO phase end to end at the smallest scale: a real primary archiving through
``bcpctl wal push`` under pgbench while ``replicate --follow`` ships to a real Ceph RGW."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.rpo import main

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


def test_the_rpo_benchmark_samples_the_offsite_recovery_point(tmp_path: Path) -> None:
    out = tmp_path / "rpo.json"
    code = main(["--scale", "1", "--seconds", "12", "--archive-timeout", "2", "--out", str(out)])
    results = json.loads(out.read_text())
    assert code == (0 if results["pass"]["rpo_under_load"] else 1)
    assert results["follower"]["exit"] == 0 and results["follower"]["problems"] == 0
    assert results["samples"]["offsite_rpo"]["samples"] > 0
    assert results["wal_objects_archived"] >= 1
