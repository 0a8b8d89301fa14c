"""The benchmark's dataset generator: deterministic, shaped 60/25/15, mutations of the asked size."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.dataset import SHARES, generate, parse_size, survey
from bench.manifest import manifest
from bench.mutation import mutate_dataset, new_line_bytes
from bench.sqldump import find_sections

SIZE = 20 << 20


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds") / "data"
    generate(root, SIZE, seed=7, jobs=2)
    return root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_parse_size_understands_binary_units() -> None:
    assert parse_size("1G") == 1 << 30
    assert parse_size("20M") == 20 << 20
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("512MB") == 512 << 20
    assert parse_size("1000") == 1000


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, SIZE, seed=7, jobs=1)
    assert manifest(again) == manifest(dataset)


def test_another_seed_gives_other_bytes(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate(other, 2 << 20, seed=8, jobs=1)
    small = tmp_path / "small7"
    generate(small, 2 << 20, seed=7, jobs=1)
    a, b = manifest(other), manifest(small)
    shared = a.keys() & b.keys()
    assert shared, "the same layout names the dumps the same way"
    assert all(a[p] != b[p] for p in shared if p.startswith("sql/"))


def test_composition_is_sixty_twentyfive_fifteen(dataset: Path) -> None:
    summary = survey(dataset)
    assert abs(summary.total_bytes - SIZE) / SIZE < 0.03
    for category, share in SHARES.items():
        assert abs(summary.bytes[category] / summary.total_bytes - share) < 0.02, category
    assert summary.files["sql"] == 16  # 4 municipalities x 4 business systems
    assert summary.files["small"] >= 100
    assert summary.files["scan"] >= 20


def test_dumps_look_like_pg_dump_with_japanese_rows(dataset: Path) -> None:
    dump = dataset / "sql" / "08226_naka" / "juki.sql"
    data = dump.read_bytes()
    assert data.startswith(b"--\n-- PostgreSQL database dump\n")
    assert b"COPY public.jumin (jumin_id, " in data and b"\n\\.\n" in data
    assert b"INSERT INTO public.idou_rireki VALUES (" in data
    text = data.decode()
    assert "茨城県那珂市" in text and "　" in text  # kanji addresses, full-width space between names
    sections = find_sections(data, "juki")
    assert [s.table.name for s in sections] == ["idou_rireki", "jumin", "setai"]
    assert all(s.end > s.start for s in sections)


def test_mutation_makes_about_pct_of_the_bytes_new(dataset: Path, tmp_path: Path) -> None:
    before = _copy(dataset, tmp_path / "before")
    after = _copy(dataset, tmp_path / "after")
    report = mutate_dataset(after, 5, seed=7, round_=1)
    total = 0
    new = 0
    for path in sorted(p for p in after.rglob("*") if p.is_file()):
        data = path.read_bytes()
        total += len(data)
        old = before / path.relative_to(after)
        new += new_line_bytes(old.read_bytes(), data) if old.exists() else len(data)
    assert 0.04 < new / total < 0.06
    assert abs(report.total_new - new) / new < 0.05
    assert report.files_added and report.files_replaced and report.rows_inserted and report.rows_updated


def test_mutation_edits_dumps_in_place_in_a_few_clusters(dataset: Path, tmp_path: Path) -> None:
    after = _copy(dataset, tmp_path / "after")
    dumps = sorted((after / "sql").rglob("*.sql"))
    inodes = {p: p.stat().st_ino for p in dumps}
    mutate_dataset(after, 5, seed=7, round_=1)
    shifted = 0
    for dump in dumps:
        assert dump.stat().st_ino == inodes[dump]
        old_lines = set((dataset / dump.relative_to(after)).read_bytes().split(b"\n"))
        new_lines = dump.read_bytes().split(b"\n")
        changed = [i for i, line in enumerate(new_lines) if line not in old_lines]
        runs = sum(1 for k, i in enumerate(changed) if k == 0 or changed[k - 1] != i - 1)
        assert 1 <= runs <= 12, dump  # appends at table ends plus a few update clusters, not sprinkled
        shifted += dump.stat().st_size != (dataset / dump.relative_to(after)).stat().st_size
    assert shifted >= len(dumps) // 2  # rows inserted and deleted: offsets move


def test_mutation_is_reproducible_and_rounds_differ(dataset: Path, tmp_path: Path) -> None:
    a = _copy(dataset, tmp_path / "a")
    b = _copy(dataset, tmp_path / "b")
    c = _copy(dataset, tmp_path / "c")
    mutate_dataset(a, 5, seed=7, round_=1)
    mutate_dataset(b, 5, seed=7, round_=1)
    mutate_dataset(c, 5, seed=7, round_=2)
    assert manifest(a) == manifest(b)
    assert manifest(a) != manifest(c)


def test_mutating_a_directory_without_a_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no generated dataset"):
        mutate_dataset(tmp_path, 5, seed=1)
