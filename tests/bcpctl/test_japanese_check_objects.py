"""The object column of ``check`` names a damaged file or tree blob in the operator's words.

What check names for a snapshot's damage is a place built from the snapshot ("snapshot X file
'f'", "snapshot X tree blob Y"), not a storage key: both kinds of place are covered, a data pack
gone (the files it breaks) and a metadata pack gone (the tree blob that lists them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from backup.checkreport import REPAIR_INDEX, REPAIR_INDEX_ALL, REPAIR_SNAPSHOTS
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli


def _repo(cli: Cli, tmp_path: Path) -> Path:
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"f{i}").write_bytes(os.urandom(200_000))
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s").returncode == 0
    return repo


@pytest.mark.parametrize(("packs", "english_place"), [("data", " file 'f"), ("meta", " tree blob ")])
def test_check_names_the_damaged_place_in_japanese(cli: Cli, tmp_path: Path, packs: str, english_place: str) -> None:
    repo = _repo(cli, tmp_path)
    for pack in [p for p in (repo / packs).rglob("*") if p.is_file()]:
        pack.unlink()
    english = cli("check", "--repo", str(repo), env=_env({}))
    japanese = cli("check", "--repo", str(repo), env=_env({"BCPCTL_LANG": "ja"}))
    assert english.returncode == japanese.returncode == 1, japanese.stderr
    assert re.search(rf"snapshot [0-9a-f]+{english_place}", english.stdout), english.stdout
    lines = japanese.stdout.splitlines()
    assert any("スナップショット" in line for line in lines), japanese.stdout
    ids = re.findall(r"\b[0-9a-f]{8,}\b", japanese.stdout)
    commands = (REPAIR_INDEX_ALL, REPAIR_INDEX, REPAIR_SNAPSHOTS)  # typed back as they are
    for line in lines:
        assert english_words(line, *ids, *commands) == [], line
    error = japanese.stderr.splitlines()[-1]
    assert english_words(error, *ids) == [], error


def test_check_suggests_prune_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """A pack no index names (an interrupted backup's): check passes and suggests prune, explained in Japanese."""
    repo = _repo(cli, tmp_path)
    stray = repo / "data" / "ab" / ("ab" + "0" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(os.urandom(1000))
    english = cli("check", "--repo", str(repo), env=_env({}))
    japanese = cli("check", "--repo", str(repo), env=_env({"BCPCTL_LANG": "ja"}))
    assert english.returncode == japanese.returncode == 0, japanese.stderr
    assert "bcpctl prune (removes packs" in english.stdout, english.stdout
    (line,) = [line for line in japanese.stdout.splitlines() if "bcpctl prune" in line]
    assert english_words(line, "bcpctl prune") == [], line
