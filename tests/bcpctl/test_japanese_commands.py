"""A Japanese operator's everyday commands print Japanese: a repository created, backed up twice,
listed, searched, measured, checked, thinned and pruned under ``BCPCTL_LANG=ja``.

tests/bcpctl/test_commands_i18n.py reads the source; these run the real CLI and read what it
prints. English is left only where the operator reads it back as it is (ids, paths, codes) and
beside a Japanese label (``システム / system``); the exit codes and ``--json`` do not change.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from pathlib import Path
from typing import get_args

import pytest

from backup.retention import _COUNTS
from bcpctl.statuslabels import LABELS, status_text
from dc.schema import State
from failover.drillrequest import MODES
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

#: a label written "日本語 / English" or "日本語 (code)": the English beside is the label's own
_BESIDE = re.compile(
    r"(?<=[\u3040-\u30ff\u4e00-\u9fff）)]) / [A-Za-z][A-Za-z ]*"
    r"|(?<=[\u3040-\u30ff\u4e00-\u9fff]) ?[(（][a-z][a-z-]*[)）]"
)
#: what is read back as it is: hex ids (snapshots, repositories, key slots) and ls's file modes
_AS_IS = re.compile(r"\b[0-9a-f]{8,}\b|\b[dl-][rwxsStT-]{9}\b")


def japanese_words(text: str, *values: str) -> list[str]:
    """The English words of ``text`` a Japanese operator would have to read (see module doc)."""
    return english_words(_AS_IS.sub(" ", _BESIDE.sub(" ", text)), *values, getpass.getuser(), socket.gethostname())


def test_the_check_sees_english() -> None:
    assert japanese_words("2 snapshot(s)") == ["snapshot"]
    assert japanese_words("┃ システム / system ┃ 状態 / status ┃\n│ p-db │ ok │", "p-db") == ["ok"]
    assert japanese_words("スナップショット 2 個で 5 件見つかりました") == []
    assert japanese_words("drwxr-xr-x 9200bb1c 正常 (ok) 失敗 (FAILED)") == []


def test_everyday_commands_read_japanese(cli: Cli, tmp_path: Path) -> None:
    data, repo = tmp_path / "data", str(tmp_path / "repo")
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("hello\n")
    (data / "sub" / "b.txt").write_text("x\n")
    ja, en = _env({"BCPCTL_LANG": "ja"}), _env({})
    values = (repo, str(data), "files", "sub")

    def run(*args: str, env: dict[str, str] = ja) -> str:
        done = cli(*args, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr

    shown = {"repo init": run("repo", "init", "--repo", repo)}
    backup = ("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "files")
    shown["backup run"] = run(*backup)
    (data / "c.txt").write_text("more\n")
    shown["backup run again"] = run(*backup)
    ids = [s["id"][:8] for s in json.loads(run("--json", "snapshots", "--repo", repo))]
    for name, args in {
        "snapshots": ("snapshots", "--repo", repo),
        "ls": ("ls", "latest", "-l", "--repo", repo),
        "find": ("find", "*.txt", "--repo", repo),
        "stats": ("stats", "--repo", repo),
        "check": ("check", "--repo", repo),
        "forget": ("forget", "--keep-last", "1", "--dry-run", "--repo", repo),
        "prune": ("prune", "--grace", "0", "--repo", repo),
        "key list": ("key", "list", "--repo", repo),
        "unlock": ("unlock", "--repo", repo),
    }.items():
        shown[name] = run(*args)
    found = {name: japanese_words(text, *values, *ids) for name, text in shown.items()}
    assert found == {name: [] for name in shown}, shown
    assert japanese_words(run("snapshots", "--repo", repo, env=en), *values, *ids), "English stays English"


def test_a_narrow_table_says_what_it_left_out_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """At 50 columns the snapshot table leaves columns out and says so; its id is still whole."""
    repo, data = str(tmp_path / "repo"), tmp_path / "data"
    data.mkdir()
    (data / "a").write_text("a")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "files").returncode == 0
    narrow = cli("snapshots", "--repo", repo, env=_env({"BCPCTL_LANG": "ja", "COLUMNS": "50"}))
    assert narrow.returncode == 0, narrow.stderr
    assert "この幅では省略" in narrow.stdout and "--json" in narrow.stdout, narrow.stdout
    snapshot = json.loads(cli("--json", "snapshots", "--repo", repo).stdout)[0]["id"][:8]
    assert snapshot in narrow.stdout, narrow.stdout


def test_json_is_the_same_in_both_languages(cli: Cli, tmp_path: Path) -> None:
    repo, data = str(tmp_path / "repo"), tmp_path / "data"
    data.mkdir()
    (data / "a").write_text("a")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "files").returncode == 0
    for args in (("snapshots",), ("stats",), ("check",), ("forget", "--keep-last", "1", "--dry-run"), ("key", "list")):
        english = cli("--json", *args, "--repo", repo, env=_env({}))
        japanese = cli("--json", *args, "--repo", repo, env=_env({"BCPCTL_LANG": "ja"}))
        assert english.returncode == japanese.returncode == 0, (args, english.stderr, japanese.stderr)
        assert _stable(json.loads(english.stdout)) == _stable(json.loads(japanese.stdout)), args


def _stable(document: object) -> object:
    """A document without what differs between two runs of the same command (durations, times)."""
    if isinstance(document, dict):
        return {k: _stable(v) for k, v in document.items() if k not in {"seconds", "checked_at", "duration_seconds"}}
    if isinstance(document, list):
        return [_stable(v) for v in document]
    return document


@pytest.mark.parametrize("code", sorted(LABELS))
def test_a_status_code_reads_japanese_beside_its_code(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """English shows the code as it always did; Japanese a label and the code a script or an
    option takes (``export list --status approved``)."""
    monkeypatch.setenv("BCPCTL_LANG", "en")
    assert status_text(code) == code
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    shown = status_text(code)
    assert shown.endswith(f" ({code})") and japanese_words(shown) == [], shown


def test_every_schema_state_and_retention_rule_has_a_label() -> None:
    assert set(get_args(State)) | set(_COUNTS) | {"within"} | set(MODES) <= set(LABELS)
