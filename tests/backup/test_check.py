"""check: honest about packs no index names, finds misplaced packs, and points at the right repair."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.backup.small_repo import SmallRepo, build_small_repo, one_pack_repo, repo_state
from tests.conftest import Cli


@pytest.fixture
def small(tmp_path: Path) -> SmallRepo:
    return build_small_repo(tmp_path)


def _check(cli: Cli, repo: Path, cache: Path, *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = cli("check", "--repo", str(repo), *extra, "--json", env={"BCPCTL_CACHE_DIR": str(cache)})
    assert "internal error" not in result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def test_a_lost_index_file_leaves_packs_in_no_index_and_names_repair_index(
    cli: Cli, small: SmallRepo, tmp_path: Path
) -> None:
    """Every index file of the repository, deleted in turn: never "unreferenced", never prune."""
    for number, index_key in enumerate(sorted(set(small.index_of.values()))):
        repo = tmp_path / f"lost-{number}"
        shutil.copytree(small.path, repo)
        (repo / index_key).unlink()
        before = repo_state(repo)
        code, report, _stderr = _check(cli, repo, tmp_path / f"cache-{number}")
        human = cli("check", "--repo", str(repo), env={"BCPCTL_CACHE_DIR": str(tmp_path / f"cache-{number}")})
        unnamed = {pack for pack, index in small.index_of.items() if index == index_key}
        assert code == 1 and report["affected_snapshots"], "every index file here names a snapshot's tree"
        noted = {n["object"] for n in report["notes"] if "in no index" in n["message"]}
        assert noted == unnamed
        assert report["remedies"][0] == "bcpctl repair index"
        assert not any("prune" in r for r in report["remedies"]), "a prune now would delete reachable data"
        assert "unreferenced" not in human.stdout and "prune" not in human.stdout
        assert "in no index" in human.stdout and "bcpctl repair index" in human.stdout
        assert repo_state(repo) == before, "check never writes"


@pytest.mark.parametrize("how", ["data into meta", "meta into data", "wrong fan-out"])
def test_plain_check_finds_a_pack_under_the_wrong_directory(
    cli: Cli, small: SmallRepo, tmp_path: Path, how: str
) -> None:
    snapshot = small.by_label("s1#2")
    key = next(iter(snapshot.tree_packs)) if how == "meta into data" else next(iter(snapshot.file_packs["d.txt"]))
    top, fan, name = key.split("/")
    moved = {"data into meta": f"meta/{fan}/{name}", "meta into data": f"data/{fan}/{name}"}.get(
        how, f"{top}/zz/{name}"
    )
    (small.path / moved).parent.mkdir(parents=True, exist_ok=True)
    (small.path / key).rename(small.path / moved)
    code, report, _stderr = _check(cli, small.path, tmp_path / "cache")
    assert code == 1
    assert [p["object"] for p in report["problems"] if p["object"] == key], report["problems"]
    assert any(moved in p["message"] for p in report["problems"] if p["object"] == key)
    assert report["affected_snapshots"] == [snapshot.id]
    assert report["remedies"][0] == "bcpctl repair index"


def test_a_misplaced_second_copy_of_a_pack_is_only_a_note(cli: Cli, small: SmallRepo, tmp_path: Path) -> None:
    key = next(iter(small.by_label("s1#2").file_packs["d.txt"]))
    copy = "meta/" + key.removeprefix("data/")
    (small.path / copy).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(small.path / key, small.path / copy)
    code, report, _stderr = _check(cli, small.path, tmp_path / "cache", "--read-data")
    assert code == 0 and any(n["object"] == copy for n in report["notes"])


@pytest.mark.parametrize("change", ["truncated", "grown"])
def test_a_pack_whose_size_is_not_the_indexed_one_is_named(
    cli: Cli, small: SmallRepo, tmp_path: Path, change: str
) -> None:
    key = next(iter(small.by_label("s1#2").file_packs["d.txt"]))
    data = (small.path / key).read_bytes()
    (small.path / key).write_bytes(data[: len(data) // 2] if change == "truncated" else data + b"\0" * 10)
    code, report, _stderr = _check(cli, small.path, tmp_path / "cache")
    assert code == 1
    assert any(p["object"] == key and "the index says" in p["message"] for p in report["problems"])


def test_a_truncated_pack_is_judged_blob_by_blob_with_read_data(cli: Cli, tmp_path: Path) -> None:
    """Blobs before the cut still read: --read-data blames only the files whose blobs are gone."""
    repo, _files = one_pack_repo(tmp_path)
    (pack,) = [p for p in (repo / "data").rglob("*") if p.is_file()]
    pack.write_bytes(pack.read_bytes()[: pack.stat().st_size * 3 // 4])
    code, report, _stderr = _check(cli, repo, tmp_path / "cache", "--read-data")
    (first,) = [p for p in report["problems"] if " file " in p["object"]]
    more = re.search(r"and (\d+) more file", first["message"])
    damaged = 1 + (int(more.group(1)) if more else 0)
    assert code == 1 and 1 <= damaged < 6, f"the blobs before the cut are intact: {first}"
    assert "f0.bin" not in first["object"], "the pack's first blob lies before the cut"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("folder", ["keys", "snapshots", "index", "data/00", "meta/00", "locks"])
def test_check_names_a_fifo_planted_in_any_folder_and_nothing_else_hangs(
    cli: Cli, small: SmallRepo, tmp_path: Path, folder: str
) -> None:
    """Hostile finding 4's class: a FIFO is named by check (exit 1); every other command goes on without it."""
    import os

    repo = tmp_path / "planted"
    shutil.copytree(small.path, repo)
    (repo / folder).mkdir(parents=True, exist_ok=True)
    key = f"{folder}/{'00' * (8 if folder == 'keys' else 32)}"
    os.mkfifo(repo / key)
    env = {"BCPCTL_CACHE_DIR": str(tmp_path / "cache")}
    code, report, _stderr = _check(cli, repo, tmp_path / "cache", "--read-data")
    assert code == 1 and [p["object"] for p in report["problems"]] == [key], report["problems"]
    assert "FIFO" in report["problems"][0]["message"]
    for command in (
        ("snapshots",),
        ("key", "list"),
        ("unlock",),
        ("restore", "latest", "--target", str(tmp_path / "o")),
    ):
        done = cli(*command, "--repo", str(repo), env=env, timeout=60)
        assert done.returncode == 0 and "internal error" not in done.stderr, (command, done.stderr)
