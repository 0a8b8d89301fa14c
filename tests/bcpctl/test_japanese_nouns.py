"""A kind of object named in a Japanese line is a Japanese noun: check's and repair's findings,
size and pattern refusals name packs, index files, key slots and strays in the operator's words.

The kinds themselves are codes (compared in the code, carried by ``--json``); the class under
test is every kind :mod:`backup.layout`, :mod:`backup.objectsize` and :mod:`backup.patterns` can
put into a line, not one message.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import pytest

from backup.kindnames import KIND_NOUNS, noun
from backup.layout import DAMAGED_PACK, PACK_KINDS, SEALED_HOMES
from backup.objectsize import MAX_BYTES
from bcpctl import i18n
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]


def _layout_literals() -> set[str]:
    """The kinds backup/layout.py writes as literals: ``Identity("key slot", …)``, ``Place(key, "lock", …)``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / "backup/layout.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Identity", "Place"):
            arg = node.args[0 if node.func.id == "Identity" else 1] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def _kinds() -> list[str]:
    """Every kind a line can name: the layout's, the size bounds', the pattern refusals'."""
    kinds = set(SEALED_HOMES) | set(PACK_KINDS) | {DAMAGED_PACK} | set(MAX_BYTES) | _layout_literals()
    kinds |= {"config", "manifest", "pack", "object", "path", "pattern"}
    assert {"key slot", "JSON document", "lock", "data pack", "index"} <= kinds  # the scan sees them
    return sorted(kinds)


@pytest.mark.parametrize("kind", _kinds())
def test_every_kind_has_a_japanese_noun(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = noun(kind)
    assert kind in KIND_NOUNS and shown == kind, "English lines keep the kind's own word"
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    japanese = i18n.shown(shown)
    assert japanese != kind and english_words(japanese) == [], japanese


def test_check_and_repair_name_kinds_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """A JSON document where an index file belongs and a FIFO among the packs, as check and repair
    report them: the English lines name the kinds in English, the Japanese ones in Japanese."""
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s").returncode == 0
    planted = f"index/{'a' * 64}"
    (repo / planted).write_text('{"x": 1}')
    os.mkfifo(repo / "data" / "zz")  # not two hex digits: data/ff is a pack directory in 1 run of 256
    english, japanese = _env({}), _env({"BCPCTL_LANG": "ja"})
    for args in (("check", "--repo", str(repo)), ("repair", "index", "--repo", str(repo))):
        en, ja = cli(*args, env=english), cli(*args, env=japanese)
        assert en.returncode == ja.returncode, (en.stderr, ja.stderr)
        assert "JSON document" in en.stdout, en.stdout
        lines = [line for line in ja.stdout.splitlines() if planted in line or "data/zz" in line]
        assert lines and all(english_words(line, planted, "data/zz") == [] for line in lines), ja.stdout
        assert "JSON 文書" in ja.stdout, ja.stdout


def test_repair_names_a_dropped_pack_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """A pack gone from storage: repair drops its record and says why in the operator's words."""
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(4096))
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s").returncode == 0
    pack = next(p for p in (repo / "data").rglob("*") if p.is_file())
    pack.unlink()
    key = str(pack.relative_to(repo))
    shutil.copytree(repo, tmp_path / "copy")
    english = cli("repair", "index", "--repo", str(repo), env=_env({}))
    japanese = cli("repair", "index", "--repo", str(tmp_path / "copy"), env=_env({"BCPCTL_LANG": "ja"}))
    assert english.returncode == japanese.returncode == 0, japanese.stderr
    assert f"{key}: missing from storage" in english.stdout, english.stdout
    lines = [line for line in japanese.stdout.splitlines() if key in line]
    assert lines and all(english_words(line, key) == [] for line in lines), japanese.stdout


def test_check_names_damaged_files_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """A pack moved under a wrong name: the missing pack, the files it breaks and the stray copy, as
    ``check --read-data`` reports them (backup.damage's reasons and check's notes)."""
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(os.urandom(300_000))
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s").returncode == 0
    pack = next(p for p in (repo / "data").rglob("*") if p.is_file())
    pack.rename(pack.with_name("b" * 64))
    english = cli("check", "--repo", str(repo), "--read-data", env=_env({}))
    japanese = cli("check", "--repo", str(repo), "--read-data", env=_env({"BCPCTL_LANG": "ja"}))
    assert english.returncode == japanese.returncode == 1, japanese.stderr
    assert "lies in damaged pack" in english.stdout and "does not match its name" in english.stdout, english.stdout
    objects = re.findall(r"^\S+ (スナップショット \w+ のファイル '[^']+'|[\w/]+): ", japanese.stdout, re.MULTILINE)
    ids = re.findall(r"\b[0-9a-f]{8,}\b", japanese.stdout)  # blob and pack ids, as the line shows them
    lines = [line for line in japanese.stdout.splitlines() if any(o in line for o in objects)]
    assert len(lines) >= 3 and all(english_words(line, *objects, *ids) == [] for line in lines), japanese.stdout
