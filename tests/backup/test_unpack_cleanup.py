"""A refused or failed unpack leaves no plaintext of the cluster behind: what it wrote is
removed, and only that (the empty target or mapped directory it was given stays, empty)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from backup.baserecord import Tablespace
from backup.pgcluster import unpack_base
from backup.repository import Repository
from backup.tablespacemap import place
from dc.errors import BcpError
from tests.backup.test_base_unpack import _SPACE, _base, _snapshot
from tests.backup.test_tablespace_hostile import _forge


@pytest.mark.parametrize("target_existed", [False, True])
@pytest.mark.parametrize("forged", ["base.tar", "tablespace-16400.tar"])
def test_a_refused_unpack_removes_what_it_wrote(
    repo: Repository, tmp_path: Path, target_existed: bool, forged: str
) -> None:
    (tmp_path / "primary-space").mkdir()
    files = {"base.tar": _base(f"16400 {tmp_path / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE}
    # the forged member comes last: everything before it is already written when it is refused
    files[forged] = _forge(files[forged], [("late", tarfile.SYMTYPE, "/etc")])
    snap = _snapshot(repo, files, [{"oid": 16400, "name": "juki_space", "location": str(tmp_path / "primary-space")}])
    target = tmp_path / "target"
    if target_existed:
        target.mkdir()
    spaces = [Tablespace(16400, "juki_space", str(tmp_path / "primary-space"))]
    placed = place(spaces, {"juki_space": str(tmp_path / "mapped")}, target)
    with pytest.raises(BcpError, match="late"):
        unpack_base(repo, snap, target, tablespaces=placed)
    assert target.exists() == target_existed and not (target_existed and any(target.iterdir()))
    assert (tmp_path / "mapped").is_dir() and not any((tmp_path / "mapped").iterdir())
    left = {p.name for p in tmp_path.iterdir()} - {"repo", "home"}  # the repository and its cache
    assert left == {"mapped", "primary-space"} | ({"target"} if target_existed else set())
