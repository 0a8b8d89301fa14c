"""repair index and repair snapshots: intact data comes back, damaged data goes only when told, nothing
readable is lost; and prune deletes nothing while the index cannot be trusted."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup.check import check_repository
from backup.opening import open_repository
from backup.repair import repair_index
from storage.local import LocalBackend
from storage.wrapper import BackendWrapper
from tests.backup.conftest import tree_digest
from tests.backup.small_repo import SmallRepo, build_small_repo, one_pack_repo, repo_state
from tests.backup.test_damage_matrix import readable_files
from tests.conftest import PASSWORD, Cli


@pytest.fixture
def small(tmp_path: Path) -> SmallRepo:
    return build_small_repo(tmp_path)


def _run(cli: Cli, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = cli(*args, env={"BCPCTL_CACHE_DIR": str(cache)})
    assert "internal error" not in result.stderr, result.stderr
    return result


def _restores_everything(cli: Cli, small: SmallRepo, repo: Path, where: Path) -> None:
    for snap in small.snapshots:
        target = where / f"restore-{snap.label}"
        result = _run(cli, where / "cache", "restore", snap.id, "--repo", str(repo), "--target", str(target))
        assert result.returncode == 0, result.stderr
        assert tree_digest(target) == snap.expected


def test_repair_index_brings_back_what_a_lost_index_file_hid(cli: Cli, small: SmallRepo, tmp_path: Path) -> None:
    """Every index file, deleted in turn with a fresh cache: repaired, checked clean, restored byte for byte."""
    for number, index_key in enumerate(sorted(set(small.index_of.values()))):
        repo, where = tmp_path / f"repo-{number}", tmp_path / f"run-{number}"
        shutil.copytree(small.path, repo)
        (repo / index_key).unlink()
        result = _run(cli, where / "cache", "repair", "index", "--repo", str(repo), "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        unnamed = {pack for pack, index in small.index_of.items() if index == index_key}
        assert set(report["packs_indexed"]) == unnamed
        assert report["removed"] == [] and report["packs_dropped"] == []
        assert _run(cli, where / "cache2", "check", "--repo", str(repo), "--read-data").returncode == 0
        _restores_everything(cli, small, repo, where)


class _Recording(BackendWrapper):
    """A real local backend that remembers the order of saves and removals."""

    def __init__(self, inner: LocalBackend) -> None:
        super().__init__(inner)
        self.log: list[tuple[str, str]] = []

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self.log.append(("save", key))
        self.inner.save(key, data, retain_until=retain_until)

    def remove(self, key: str) -> None:
        self.log.append(("remove", key))
        self.inner.remove(key)


def test_a_damaged_index_file_goes_only_after_its_replacement_is_stored(small: SmallRepo, tmp_path: Path) -> None:
    index_key = small.index_of[next(iter(small.by_label("s1#2").tree_packs))]
    data = bytearray((small.path / index_key).read_bytes())
    data[len(data) // 2] ^= 1
    (small.path / index_key).write_bytes(bytes(data))
    backend = _Recording(LocalBackend(small.path))
    with open_repository(backend, PASSWORD) as repo:
        report = repair_index(repo)
    removed_at = backend.log.index(("remove", index_key))
    written = [i for i, (op, key) in enumerate(backend.log) if op == "save" and key.startswith("index/")]
    assert written and written[0] < removed_at
    assert [p.object for p in report.removed] == [index_key]
    with open_repository(LocalBackend(small.path), PASSWORD) as repo:
        assert check_repository(repo, read_data=True).ok


@pytest.mark.parametrize("kind", ["data pack", "meta pack", "snapshot", "index file", "key slot"])
def test_repair_index_puts_a_moved_object_back(cli: Cli, small: SmallRepo, tmp_path: Path, kind: str) -> None:
    s1_2 = small.by_label("s1#2")
    key, moved = {
        "data pack": lambda k: (k, "meta/" + k.removeprefix("data/")),
        "meta pack": lambda k: (k, "data/" + k.removeprefix("meta/")),
        "snapshot": lambda k: (k, "index/" + k.rsplit("/", 1)[1]),
        "index file": lambda k: (k, "snapshots/" + k.rsplit("/", 1)[1]),
        "key slot": lambda k: (k, "index/" + k.rsplit("/", 1)[1]),
    }[kind](
        {
            "data pack": next(iter(s1_2.file_packs["d.txt"])),
            "meta pack": next(iter(s1_2.tree_packs)),
            "snapshot": f"snapshots/{s1_2.id}",
            "index file": small.index_of[next(iter(s1_2.tree_packs))],
            "key slot": f"keys/{small.other_slot}",
        }[kind]
    )
    (small.path / moved).parent.mkdir(parents=True, exist_ok=True)
    (small.path / key).rename(small.path / moved)
    result = _run(cli, tmp_path / "cache", "repair", "index", "--repo", str(small.path), "--json")
    assert result.returncode == 0, result.stderr
    assert [moved, key] in json.loads(result.stdout)["moved"]
    assert (small.path / key).is_file() and not (small.path / moved).exists()
    assert _run(cli, tmp_path / "cache2", "check", "--repo", str(small.path), "--read-data").returncode == 0
    _restores_everything(cli, small, small.path, tmp_path)


def test_read_all_packs_salvages_the_readable_blobs_of_a_damaged_pack(cli: Cli, tmp_path: Path) -> None:
    """One damaged blob in a pack of six: five files come back, one is dropped only by repair snapshots."""
    repo, files = one_pack_repo(tmp_path)
    (pack,) = [p for p in (repo / "data").rglob("*") if p.is_file()]
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        third = sorted(r.cache.pack_entries(pack.name), key=lambda row: row[3])[2]
    data = bytearray(pack.read_bytes())
    data[third[3] + 10] ^= 0x01
    pack.write_bytes(bytes(data))
    key = str(pack.relative_to(repo))

    result = _run(cli, tmp_path / "cache", "repair", "index", "--repo", str(repo), "--read-all-packs", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["packs_salvaged"] == [key] and report["blobs_salvaged"] == 5 and len(report["blobs_lost"]) == 1
    assert pack.is_file(), "repair deletes no pack; prune removes it once no index names it"
    check = _run(cli, tmp_path / "cache", "check", "--repo", str(repo), "--read-data", "--json")
    problems = json.loads(check.stdout)["problems"]
    assert check.returncode == 1 and [p["object"].rsplit(" ", 1)[1] for p in problems] == ["'f2.bin'"]

    args = ("repair", "snapshots", "--repo", str(repo), "--forget", "--yes")
    assert _run(cli, tmp_path / "cache", *args).returncode == 0
    assert _run(cli, tmp_path / "cache", "check", "--repo", str(repo), "--read-data").returncode == 0
    target = tmp_path / "restored"
    assert (
        _run(cli, tmp_path / "cache", "restore", "latest", "--repo", str(repo), "--target", str(target)).returncode == 0
    )
    assert tree_digest(target) == {name: ("file", content) for name, content in files.items() if name != "f2.bin"}


def test_repair_snapshots_only_reports_without_forget(cli: Cli, small: SmallRepo, tmp_path: Path) -> None:
    key = next(iter(small.by_label("s1#2").file_packs["d.txt"]))
    (small.path / key).unlink()
    before = repo_state(small.path)
    result = _run(cli, tmp_path / "cache", "repair", "snapshots", "--repo", str(small.path), "--json")
    assert result.returncode == 1 and result.stderr.startswith("bcpctl: error: 1 snapshot(s) cannot be fully restored")
    plan = json.loads(result.stdout)
    assert [(s["id"], s["dropped_files"]) for s in plan["snapshots"]] == [(small.by_label("s1#2").id, ["d.txt"])]
    assert not plan["applied"] and repo_state(small.path) == before


@pytest.mark.parametrize("extra", [["--json"], []])
def test_repair_snapshots_forget_needs_yes_without_a_terminal(
    cli: Cli, small: SmallRepo, tmp_path: Path, extra: list[str]
) -> None:
    (small.path / next(iter(small.by_label("s1#2").file_packs["d.txt"]))).unlink()
    before = repo_state(small.path)
    result = _run(cli, tmp_path / "cache", "repair", "snapshots", "--repo", str(small.path), "--forget", *extra)
    assert result.returncode == 2 and "--yes" in result.stderr
    assert repo_state(small.path) == before


def test_repair_snapshots_forget_commits_a_signed_replacement(cli: Cli, small: SmallRepo, tmp_path: Path) -> None:
    s1_2 = small.by_label("s1#2")
    (small.path / next(iter(s1_2.file_packs["d.txt"]))).unlink()
    assert _run(cli, tmp_path / "cache", "repair", "index", "--repo", str(small.path)).returncode == 0  # restic's order
    args = ("repair", "snapshots", "--repo", str(small.path), "--forget", "--yes", "--json")
    result = _run(cli, tmp_path / "cache", *args)
    assert result.returncode == 0, result.stderr
    ((original, replacement),) = json.loads(result.stdout)["rewritten"]
    assert original == s1_2.id and replacement
    assert not (small.path / "snapshots" / original).exists()
    listed = json.loads(_run(cli, tmp_path / "cache", "snapshots", "--repo", str(small.path), "--json").stdout)
    new = next(s for s in listed if s["id"] == replacement)
    assert (new["time"], new["system"], new["tags"]) == (s1_2.time, "s1", {"repaired": "true"})
    assert new["summary"]["repair"]["original"] == original
    assert new["summary"]["repair"]["dropped_paths"] == ["d.txt"]
    check = _run(cli, tmp_path / "cache", "check", "--repo", str(small.path), "--read-data", "--json")
    assert check.returncode == 0, check.stdout
    assert not json.loads(check.stdout)["notes"], "the replacement is in the signed manifest"
    target = tmp_path / "restored"
    assert _run(cli, tmp_path / "cache", "restore", replacement, "--repo", str(small.path), "--target", str(target))
    assert tree_digest(target) == {p: v for p, v in s1_2.expected.items() if p != "d.txt"}


@pytest.mark.parametrize("answer", ["n", "y"])
def test_repair_snapshots_asks_on_a_terminal(small: SmallRepo, tmp_path: Path, answer: str) -> None:
    (small.path / next(iter(small.by_label("s1#2").file_packs["d.txt"]))).unlink()
    before = repo_state(small.path)
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "repair", "snapshots", "--repo", str(small.path), "--forget"],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "BCPCTL_CACHE_DIR": str(tmp_path / "cache")},
    )
    os.close(secondary)
    os.write(main, f"{answer}\n".encode())
    out, err = proc.communicate(timeout=60)
    os.close(main)
    if answer == "n":
        assert proc.returncode == 1 and b"nothing was changed" in err
        assert repo_state(small.path) == before
    else:
        assert proc.returncode == 0, err
        assert b"rewrote 1 snapshot(s)" in out


def test_prune_deletes_nothing_while_an_index_file_is_lost(cli: Cli, small: SmallRepo, tmp_path: Path) -> None:
    """The packs of a lost index look unused to prune: it must refuse, and be safe once repaired."""
    index_key = small.index_of[next(iter(small.by_label("s1#2").tree_packs))]
    (small.path / index_key).unlink()
    before = repo_state(small.path)
    refused = _run(cli, tmp_path / "cache", "prune", "--repo", str(small.path), "--grace", "0s")
    assert refused.returncode == 1 and "bcpctl repair index" in refused.stderr
    assert repo_state(small.path) == before, "a refused prune changes nothing, the manifest included"
    assert _run(cli, tmp_path / "cache", "repair", "index", "--repo", str(small.path)).returncode == 0
    assert _run(cli, tmp_path / "cache", "prune", "--repo", str(small.path), "--grace", "0s").returncode == 0
    assert _run(cli, tmp_path / "cache", "check", "--repo", str(small.path), "--read-data").returncode == 0
    _restores_everything(cli, small, small.path, tmp_path)


DAMAGE_WITHOUT_LOSS = ["lose index", "swap pack", "fan-out", "copy pack", "copy index"]


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(DAMAGE_WITHOUT_LOSS), st.integers(0, 99)),
        min_size=1,
        max_size=4,
    )
)
def test_repair_index_undoes_any_damage_that_loses_no_bytes(small: SmallRepo, tmp_path_factory, damages) -> None:  # type: ignore[no-untyped-def]
    """Lost index files, packs in the wrong place, copies: afterwards check is clean and every file reads."""
    work = tmp_path_factory.mktemp("example")
    repo = work / "repo"
    shutil.copytree(small.path, repo)
    for how, pick in damages:
        packs = sorted(str(p.relative_to(repo)) for p in repo.glob("*/*/*") if p.parts[-3] in ("data", "meta"))
        indexes = sorted(str(p.relative_to(repo)) for p in (repo / "index").iterdir())
        if how == "lose index" and indexes:
            (repo / indexes[pick % len(indexes)]).unlink()
        elif how == "copy index" and indexes:
            source = indexes[pick % len(indexes)]
            copy = repo / "index" / (f"{pick:02d}" + source.rsplit("/", 1)[1][2:])
            if copy != repo / source:  # a name that already starts with those digits has no copy to make
                shutil.copy(repo / source, copy)
        elif packs:
            source = packs[pick % len(packs)]
            top, fan, name = source.split("/")
            target = {
                "swap pack": f"{'meta' if top == 'data' else 'data'}/{fan}/{name}",
                "fan-out": f"{top}/zz/{name}",
                "copy pack": f"{top}/{pick:02d}/{pick:02d}{name[2:]}",
            }[how]
            (repo / target).parent.mkdir(parents=True, exist_ok=True)
            if target != source:
                (shutil.copy if how == "copy pack" else os.rename)(repo / source, repo / target)
    os.environ["BCPCTL_CACHE_DIR"] = str(work / "cache")
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        repair_index(r)
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        report = check_repository(r, read_data=True)
    assert report.ok, report.problems
    readable = readable_files(repo)
    assert readable is not None
    for snap in small.snapshots:
        assert readable[snap.time] == {p for p, v in snap.expected.items() if v[0] == "file"}
