"""``make bench``'s replication half end to end on a tiny repository: it must run on a fresh
checkout as it is (a command it needs refusing to run is caught here, not on bench day)."""

from __future__ import annotations

import pytest

from bench.replication import main

pytestmark = [pytest.mark.s3, pytest.mark.sshd, pytest.mark.slow]


def test_the_replication_benchmark_runs_on_a_small_repository(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "replication.json"
    assert main(["--synthetic", "8", "--repeat", "1", "--out", str(out)]) == 0
    assert out.exists() and "ceph-rgw" in out.read_text() and "sshd" in out.read_text()
