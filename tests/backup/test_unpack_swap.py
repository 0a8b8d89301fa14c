"""A parent of a tablespace's place swapped for a link while the unpack runs (minutes for a real
database): the unpack goes on writing into the directory it opened, never through the link."""

from __future__ import annotations

from pathlib import Path

from backup.baserecord import Tablespace
from backup.pgcluster import unpack_base
from backup.repository import Repository
from backup.tablespacemap import place
from tests.backup.test_base_unpack import _SPACE, _base, _snapshot


def test_a_parent_swapped_for_a_link_during_the_unpack_is_never_followed(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "canary").mkdir()
    (tmp_path / "primary-space").mkdir()
    location = str(tmp_path / "primary-space")
    files = {"base.tar": _base(f"16400 {location}\n"), "tablespace-16400.tar": _SPACE}
    snap = _snapshot(repo, files, [{"oid": 16400, "name": "juki_space", "location": location}])
    target = tmp_path / "target"
    placed = place([Tablespace(16400, "juki_space", location)], {"16400": str(tmp_path / "mapped" / "juki")}, target)

    def swap(_: int) -> None:
        # once the base is down, the tablespace's stream is being read: its place is open
        if (target / "PG_VERSION").exists() and not (tmp_path / "mapped").is_symlink():
            (tmp_path / "mapped").rename(tmp_path / "moved")
            (tmp_path / "mapped").symlink_to(tmp_path / "canary")

    unpack_base(repo, snap, target, tablespaces=placed, progress=swap)
    assert (tmp_path / "mapped").is_symlink()  # the swap happened, mid-unpack
    assert list((tmp_path / "canary").iterdir()) == []
    assert (tmp_path / "moved" / "juki" / "PG_15_202209061" / "5" / "16500").read_bytes() == b"rows" * 100
