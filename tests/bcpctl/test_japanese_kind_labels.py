"""Key-slot kinds and snapshot source kinds read "日本語ラベル (code)" in Japanese, the code as it
is in English: every kind the code can write, and the two tables that show them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup.escrow import ESCROW_KIND
from backup.slotformat import KEYFILE_KIND
from backup.sources import KINDS
from bcpctl.statuslabels import source_text, status_text
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

SLOT_KINDS = ("passphrase", ESCROW_KIND, KEYFILE_KIND)


@pytest.mark.parametrize("kind", SLOT_KINDS)
def test_every_slot_kind_has_a_japanese_label(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCPCTL_LANG", "en")
    assert status_text(kind) == kind
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    label, _sep, code = status_text(kind).rpartition(" ")
    assert code == f"({kind})" and label and english_words(label) == [], status_text(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_kind_has_a_japanese_label(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCPCTL_LANG", "en")
    assert source_text(kind, "/srv/a b") == f"{kind}:/srv/a b"
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    shown = source_text(kind, "/srv/a b")
    assert shown.endswith(f" ({kind}:/srv/a b)"), shown
    assert english_words(shown.removesuffix(f" ({kind}:/srv/a b)"), "SQLite", "PostgreSQL", "WAL") == [], shown


def test_key_list_and_snapshots_show_labels(cli: Cli, tmp_path: Path) -> None:
    repo, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}", "--system", "s").returncode == 0
    wide = {"COLUMNS": "250"}
    english = cli("key", "list", "--repo", str(repo), env=_env(wide))
    japanese = cli("key", "list", "--repo", str(repo), env=_env({"BCPCTL_LANG": "ja", **wide}))
    assert english.returncode == japanese.returncode == 0, japanese.stderr
    assert "パスフレーズ (passphrase)" in japanese.stdout, japanese.stdout
    assert "(passphrase)" not in english.stdout and "passphrase" in english.stdout, english.stdout
    english = cli("snapshots", "--repo", str(repo), env=_env(wide))
    japanese = cli("snapshots", "--repo", str(repo), env=_env({"BCPCTL_LANG": "ja", **wide}))
    assert english.returncode == japanese.returncode == 0, japanese.stderr
    assert f"(path:{src})" in japanese.stdout, japanese.stdout
    assert f"path:{src}" in english.stdout and f"(path:{src})" not in english.stdout, english.stdout
