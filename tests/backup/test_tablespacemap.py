"""Where a restore places tablespaces: every mapping it accepts stays in the allowed area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.baserecord import Tablespace, format_tablespace_map, parse_tablespace_map
from backup.tablespacemap import DEFAULT_DIR, parse_mapping, place
from dc.errors import UsageError


def _setup(root: Path) -> tuple[Path, list[Tablespace]]:
    area = root / "area"
    primary = area / "primary-space"
    (primary / "PG_15_202209061").mkdir(parents=True)
    return area / "target", [Tablespace(16400, "juki_space", str(primary)), Tablespace(16401, "zei_space", "/srv/zei")]


def test_by_default_every_tablespace_is_under_the_target(tmp_path: Path) -> None:
    target, spaces = _setup(tmp_path)
    assert place(spaces, {}, target) == {s.oid: target / DEFAULT_DIR / str(s.oid) for s in spaces}


@pytest.mark.parametrize(
    ("mapping", "reason"),
    [
        ("juki_space=/var/tmp/x", "is outside"),
        ("juki_space={area}/link-out/x", "is outside"),
        ("juki_space={area}/primary-space", "overlaps the primary's tablespace"),
        ("juki_space={area}/link-in/new", "goes through the symlink"),
        ("juki_space={area}/link-in", "goes through the symlink"),
        ("juki_space={area}/full", "not an empty directory"),
        ("juki_space={area}/full/f", "not an empty directory"),
        ("juki_space={area}/target/ts", "overlaps the restore target"),
        ("juki_space={area}", "is outside"),
        ("juki_space={area}/cluster/ts", "inside PostgreSQL's files"),
        ("16401={area}/z/../y", "without '..'"),
        ("16401=rel", "must be absolute"),
        ("kokuho=/x", "no such tablespace"),
    ],
)
def test_a_trapped_mapping_is_refused_with_its_reason(tmp_path: Path, mapping: str, reason: str) -> None:
    target, spaces = _setup(tmp_path)
    area = target.parent
    (area / "link-out").symlink_to("/var/tmp")
    (area / "link-in").symlink_to(area / "empty")
    (area / "empty").mkdir()
    (area / "full").mkdir()
    (area / "full" / "f").write_text("x")
    (area / "cluster").mkdir()
    (area / "cluster" / "PG_VERSION").write_text("15")
    with pytest.raises(UsageError, match=reason):
        place(spaces, parse_mapping([mapping.format(area=area)]), target)


def test_two_tablespaces_never_share_a_directory(tmp_path: Path) -> None:
    target, spaces = _setup(tmp_path)
    area = target.parent
    for second in (area / "a", area / "a" / "b"):
        with pytest.raises(UsageError, match="two tablespaces"):
            place(spaces, {"juki_space": str(area / "a"), "16401": str(second)}, target)
    with pytest.raises(UsageError, match="twice"):
        place(spaces, {"juki_space": str(area / "a"), "16400": str(area / "b")}, target)
    with pytest.raises(UsageError, match="twice"):
        parse_mapping(["16400=/a", "16400=/b"])


_PARTS = st.sampled_from(["a", "b", "link-in", "link-out", "link-primary", "full", "primary-space", "target", ".."])


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(_PARTS, min_size=0, max_size=4))
def test_an_accepted_mapping_is_a_fresh_place_inside_the_area(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    root = tmp_path_factory.mktemp("area")
    target, spaces = _setup(root)
    area = target.parent
    (area / "a").mkdir()
    (area / "full").mkdir()
    (area / "full" / "f").write_text("x")
    (area / "link-in").symlink_to(area / "a")
    (area / "link-out").symlink_to(root.parent)
    (area / "link-primary").symlink_to(area / "primary-space")
    before = sorted(str(p) for p in root.rglob("*"))
    path = Path(area, *parts)
    try:
        placed = place(spaces, {"juki_space": str(path)}, target)[16400]
    except UsageError:
        assert sorted(str(p) for p in root.rglob("*")) == before  # a refusal writes nothing
        return
    assert placed.is_relative_to(area) and placed != area
    assert not any(p.is_symlink() for p in [path, *path.parents] if p.is_relative_to(area))
    assert not placed.exists() or (placed.is_dir() and not any(placed.iterdir()))
    assert not placed.is_relative_to(area / "primary-space") and not placed.is_relative_to(target)
    assert os.path.realpath(placed) == str(placed)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.dictionaries(st.integers(1, 2**32 - 1), st.text(min_size=1).filter(lambda t: "\x00" not in t), max_size=4))
def test_tablespace_map_round_trips_any_path(paths: dict[int, str]) -> None:
    assert parse_tablespace_map(format_tablespace_map(paths)) == paths
