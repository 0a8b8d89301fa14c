"""``bench/oneshot.py`` end to end on a tiny repository, a second checkout (this one) taking part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.oneshot import main

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def test_the_oneshot_benchmark_alternates_every_tool_on_each_change(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "oneshot.json"
    checkout = Path(__file__).resolve().parents[2]
    assert main(["--synthetic", "8", "--rounds", "2", "--before", str(checkout), "--out", str(out)]) == 0
    medians = json.loads(out.read_text())["medians"]
    assert set(medians["incremental"]) == {"bcpctl", "bcpctl-before", "rclone", "library floor"}
    assert 0 < medians["nothing to copy"]["library floor"]["seconds"] < medians["nothing to copy"]["bcpctl"]["seconds"]
    for tool in ("bcpctl", "bcpctl-before"):
        assert all(n > 0 for n in medians["incremental"][tool]["transfers"])  # each round's change was shipped
        assert medians["nothing to copy"][tool]["transfers"] == [0, 0]
