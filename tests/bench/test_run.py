"""The runner end to end with stand-in tools: results are written, and a wrong restore fails the run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import run, tools
from bench.run import main

_CORRUPT = """
import pathlib, sys
victim = sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*.sql"))[0]
data = bytearray(victim.read_bytes()); data[100] ^= 1; victim.write_bytes(bytes(data))
"""


# Copying 2 MB can end before the 10 ms memory sampler first looks (it did on a busy CI host,
# and the phase showed a peak of 0): each step lives a little longer than a sample.
_LIVE = "sleep 0.1"


class CopyTool(tools.Tool):
    """A 'backup tool' that copies the tree: enough to exercise timing, sizes and verification."""

    corrupt = False

    def executable(self) -> str:
        return shutil.which("cp") or "/bin/cp"

    def version(self) -> str:
        return "copy 1.0"

    def init(self) -> list[str]:
        return ["mkdir", "-p", str(self.repo)]

    def backup(self, source: Path) -> list[str]:
        return ["sh", "-c", f'{_LIVE} && rm -rf "{self.repo}/snap" && cp -a "{source}" "{self.repo}/snap"']

    def restore(self, target: Path) -> tuple[list[str], Path | None]:
        script = f'{_LIVE} && cp -a "{self.repo}/snap/." "{target}/"'
        if self.corrupt:
            script += f' && "{sys.executable}" -c \'{_CORRUPT}\' "{target}"'
        return ["sh", "-c", script], None

    def restored_root(self, target: Path, source: Path) -> Path:
        return target


class CorruptingTool(CopyTool):
    corrupt = True


@pytest.fixture(params=[True, False], ids=["cache-dropped", "cache-kept"])
def drops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The page cache is never really dropped by a test; where "allowed", calls are counted."""
    calls: list[int] = []

    def drop() -> bool:
        calls.append(1)
        return bool(request.param)

    monkeypatch.setattr(run, "_drop_caches", drop)
    return calls


@pytest.fixture
def fake_tools(monkeypatch: pytest.MonkeyPatch, drops: list[int]) -> None:
    monkeypatch.setitem(tools.TOOLS, "copy", CopyTool)
    monkeypatch.setitem(tools.TOOLS, "corrupting", CorruptingTool)


def test_a_run_writes_results_with_every_phase(fake_tools: None, tmp_path: Path) -> None:
    assert main(["--size", "2M", "--tools", "copy", "--shape", "mixed", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "latest.json").read_text())["shapes"]["mixed"]
    copy = doc["tools"]["copy"]
    assert set(copy["phases"]) == {"full", "incremental", "restore"}
    assert all(p["ok"] and p["seconds"] > 0 and p["peak_rss"] > 0 for p in copy["phases"].values())
    assert copy["repo_bytes_full"] == doc["dataset_bytes"]
    assert doc["derived"]["copy"]["incremental_added"] > 0  # the mutation grew the tree
    assert "| metric | copy |" in (tmp_path / "latest.md").read_text()
    assert not (tmp_path / "run").exists()  # repositories and the source copy are removed
    assert not (tmp_path / "trash").exists()


def test_nothing_is_deleted_until_the_run_ends(
    fake_tools: None, drops: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_set_aside = run._set_aside

    def set_aside(work: Path, out: Path) -> None:
        real_set_aside(work, out)
        seen.append(len(list((out / "trash").iterdir())))

    monkeypatch.setattr(run, "_set_aside", set_aside)
    assert main(["--size", "2M", "--tools", "copy", "--shape", "mixed", "--repeat", "2", "--out", str(tmp_path)]) == 0
    assert seen == [1, 2]  # each repetition's files are kept aside while the run goes on
    assert not (tmp_path / "trash").exists()  # and deleted after the last one
    assert float((tmp_path / "last-deletion").read_text()) > 0
    assert len(drops) >= 1 + 2 * 3  # at the start, and before every timed step


def test_a_run_waits_out_an_earlier_runs_deletions(fake_tools: None, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    slept: list[float] = []
    monkeypatch.setattr(run.time, "sleep", slept.append)
    (tmp_path / "last-deletion").write_text(f"{run.time.time() - 100}\n")
    assert main(["--size", "2M", "--tools", "copy", "--shape", "mixed", "--out", str(tmp_path)]) == 0
    assert len(slept) == 1 and 255 <= slept[0] <= 260  # the rest of ext4's six minutes
    (tmp_path / "last-deletion").write_text(f"{run.time.time() - 400}\n")
    assert main(["--size", "2M", "--tools", "copy", "--shape", "mixed", "--out", str(tmp_path)]) == 0
    assert len(slept) == 1  # long enough ago: no wait


def test_both_shapes_are_run_and_reported_by_default(fake_tools: None, tmp_path: Path) -> None:
    assert main(["--size", "4M", "--tools", "copy", "--out", str(tmp_path)]) == 0
    shapes = json.loads((tmp_path / "latest.json").read_text())["shapes"]
    assert set(shapes) == {"mixed", "dumps"}
    assert all(doc["derived"]["copy"]["ok"] for doc in shapes.values())
    markdown = (tmp_path / "latest.md").read_text()
    assert "**mixed shape:" in markdown and "**dumps shape:" in markdown
    # the dumps shape: a handful of dumps hold most of the bytes
    data = next((tmp_path / "datasets").glob("dumps-*")) / "data"
    dumps = [p.stat().st_size for p in (data / "sql").rglob("*.sql")]
    assert len(dumps) == 5 and sum(dumps) >= 0.75 * shapes["dumps"]["dataset_bytes"]


def test_an_unknown_shape_is_a_usage_error(fake_tools: None, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown shape"):
        main(["--size", "2M", "--tools", "copy", "--shape", "mixed,tiny", "--out", str(tmp_path)])


def test_a_wrong_restore_fails_the_run(fake_tools: None, tmp_path: Path) -> None:
    assert main(["--size", "2M", "--tools", "copy,corrupting", "--shape", "mixed", "--out", str(tmp_path)]) == 1
    doc = json.loads((tmp_path / "latest.json").read_text())["shapes"]["mixed"]
    assert doc["derived"]["copy"]["ok"] is True
    assert doc["derived"]["corrupting"]["ok"] is False
    assert doc["tools"]["corrupting"]["restore_problems"][0].startswith("content differs: sql/")


def test_an_unknown_tool_is_a_usage_error(fake_tools: None, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown tool"):
        main(["--size", "2M", "--tools", "copy,rsnapshot", "--out", str(tmp_path)])
