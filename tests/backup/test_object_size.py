"""Object sizes: no genuine object exceeds its kind's bound, and an object that does is never read whole.

The class of hostile finding 1 over every kind bcpctl reads whole (:mod:`backup.objectsize`):
a sparse file of gigabytes (it costs no disk) planted at an object's place, or in place of
one, under an address-space limit far below its size. Every command names it as a damaged
object of its kind — never "internal error: MemoryError".
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backup.index import INDEX_BLOBS_PER_FILE, IndexedPack, split_index
from backup.layout import place_of
from backup.objectsize import MAX_BYTES, MAX_TREE_BLOB, pack_bound
from backup.pack import BlobEntry
from tests.conftest import Cli, isolated_vars

LIMIT = 1536 * 1024 * 1024
HUGE = 8 * 1024 * 1024 * 1024
NAME = "00" * 32


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _repo(cli: Cli, tmp_path: Path) -> Path:
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n" * 1000)
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}").returncode == 0
    return repo


def _run(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", *args],
        env=cli.env, capture_output=True, text=True, timeout=120, preexec_fn=_limited,
    )  # fmt: skip


def _plant(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.truncate(HUGE)


def _genuine(repo: Path, directory: str) -> Path:
    return next(p for p in sorted((repo / directory).rglob("*")) if p.is_file())


#: where the giant goes: a new object of the kind's shape, or in place of the genuine one
PLANTS = {
    "config": lambda repo: repo / "config",
    "key slot": lambda repo: repo / "keys" / ("0" * 16),
    "lock": lambda repo: repo / "locks" / "prune",
    "manifest": lambda repo: repo / "manifest",
    "tombstone": lambda repo: repo / "tombstones" / NAME,
    "index (new)": lambda repo: repo / "index" / NAME,
    "index (replaced)": lambda repo: _genuine(repo, "index"),
    "snapshot (replaced)": lambda repo: _genuine(repo, "snapshots"),
    "data pack (new)": lambda repo: repo / "data" / "00" / NAME,
    "data pack (replaced)": lambda repo: _genuine(repo, "data"),
    "meta pack (replaced)": lambda repo: _genuine(repo, "meta"),
}


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory, control_db_template: Path) -> tuple[Path, Path]:
    """One ``repo init`` and ``backup run`` for every kind: the repository's path, and a pristine
    copy of it and of the home (control database, cache) the two commands left."""
    root = tmp_path_factory.mktemp("object-size")
    repo = _repo(Cli(isolated_vars(root / "home", control_db_template)), root)
    pristine = root / "pristine"
    shutil.copytree(repo, pristine / "repo")
    shutil.copytree(root / "home", pristine / "home")
    return repo, pristine


@pytest.fixture
def fresh_repo(backed_up: tuple[Path, Path], isolated_env: Path) -> Path:
    """The module's repository and this test's home exactly as ``_repo`` leaves them, at the
    repository's own path (the index cache is keyed by it), whatever an earlier test planted."""
    repo, pristine = backed_up
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(pristine / "repo", repo)
    shutil.copytree(pristine / "home", isolated_env, dirs_exist_ok=True)
    return repo


@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_a_giant_object_of_any_kind_is_named_never_read_whole(
    cli: Cli, tmp_path: Path, fresh_repo: Path, kind: str
) -> None:
    repo = fresh_repo
    planted = PLANTS[kind](repo)
    _plant(planted)
    key = str(planted.relative_to(repo))
    for args in (("check", "--read-data"), ("restore", "latest", "--target", str(tmp_path / "out")), ("snapshots",)):
        done = _run(cli, *args, "--repo", str(repo))
        assert "internal error" not in done.stderr, (args, done.stderr)
        if kind == "config":
            assert done.returncode == 2 and "config" in done.stderr, done.stderr  # no usable repository
        elif args[0] == "check":
            # an unsigned slot that opens nothing is a note, like any stray under keys/ (exit 0)
            assert done.returncode in ((0, 1) if kind == "key slot" else (1,)), done.stdout + done.stderr
            assert key in done.stdout + done.stderr, done.stdout + done.stderr
    if kind in ("key slot", "lock", "tombstone", "index (new)", "data pack (new)"):
        # an extra object: the genuine snapshot still restores
        assert (tmp_path / "out" / "a.txt").read_text() == "a\n" * 1000


def test_index_files_are_cut_so_no_genuine_one_nears_its_bound() -> None:
    entry = BlobEntry(b"\0" * 32, 0, 0, 40, 16, 0)
    packs = [IndexedPack(f"{i:064x}", 0, b"\0" * 32, 1, (entry,) * 300_000) for i in range(10)]
    files = split_index(packs, ["ab" * 32])
    assert [len(f.packs) for f in files] == [3, 3, 3, 1]
    assert all(sum(len(p.entries) for p in f.packs) <= INDEX_BLOBS_PER_FILE for f in files)
    assert files[-1].supersedes == ("ab" * 32,) and not any(f.supersedes for f in files[:-1])
    assert [len(f.packs) for f in split_index(packs, max_packs=4)] == [3, 3, 3, 1]
    assert [len(f.packs) for f in split_index(packs[:2], max_packs=1)] == [1, 1]


def test_every_object_a_backup_writes_is_within_its_bound(cli: Cli, tmp_path: Path) -> None:
    repo = _repo(cli, tmp_path)
    assert cli("forget", "--repo", str(repo), "--keep-last", "1").returncode == 0
    for path in (p for p in repo.rglob("*") if p.is_file()):
        kind = place_of(str(path.relative_to(repo))).kind
        if kind in ("data pack", "meta pack"):
            bound = pack_bound(16 * 1024 * 1024, MAX_TREE_BLOB)
        else:
            bound = MAX_BYTES[
                {"index": "index", "snapshot": "snapshot", "manifest link": "manifest"}.get(str(kind), str(kind))
            ]
        assert path.stat().st_size <= bound, path
