"""--scale-memory: three measured backups per tool, the big dataset distinct from the 1x one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench import tools
from bench.scale import main, scale_memory
from tests.bench.test_run import CopyTool


@pytest.fixture
def copy_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tools.TOOLS, "copy", CopyTool)


def test_scale_measures_1x_big_and_1x_into_big(copy_tool: None, tmp_path: Path) -> None:
    result = scale_memory(tmp_path, 1 << 20, 1, 3, ["copy"], Console(quiet=True))
    runs = result["tools"]["copy"]
    assert set(runs) == {"1x", "big", "1x_into_big"}
    assert all(r["ok"] and r["peak_rss"] > 0 for r in runs.values())
    assert runs["big"]["repo_bytes"] > 2.5 * runs["1x"]["repo_bytes"]
    assert result["bytes_big"] > 2.5 * result["bytes_1x"]
    assert not (tmp_path / "scale").exists()


def test_scale_command_writes_json_and_markdown(copy_tool: None, tmp_path: Path) -> None:
    assert main(["--size", "1M", "--factor", "2", "--tools", "copy", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "scale-memory.json").read_text())
    assert doc["factor"] == 2
    assert "| copy |" in (tmp_path / "scale-memory.md").read_text()
