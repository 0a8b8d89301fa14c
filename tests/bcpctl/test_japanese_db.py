"""``db upgrade`` and ``db current`` in Japanese: the migrations' titles and where a schema stands.

A migration's title is the first line of its docstring (English, the developers' language); the
catalog carries each one (scripts/catalog.py extracts them), so the class under test is every
migration shipped, tomorrow's included. The log lines ``db upgrade`` writes on stderr stay English
by design (docs/deployment.md, "The language of logs"): what they say is on stdout in Japanese.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bcpctl import i18n
from dc.schema import migration_titles, upgrade
from dc.state import connect
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

#: names that read the same in both languages inside a title
KEPT = ("GiB", "PostgreSQL", "bcpctl", "7fbf416")


@pytest.mark.parametrize("revision", sorted(migration_titles()))
def test_every_migration_title_has_japanese(revision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    title = migration_titles()[revision]
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    assert english_words(i18n._(title), *KEPT) == [], (revision, i18n._(title))


def test_db_upgrade_and_current_read_japanese(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    japanese = _env({"BCPCTL_LANG": "ja"})
    upgraded = cli("db", "upgrade", "--control-db", url, env=japanese)
    assert upgraded.returncode == 0, upgraded.stderr
    lines = upgraded.stdout.splitlines()
    assert len(lines) == 1 + len(migration_titles())
    assert [w for line in lines for w in english_words(line, url, *KEPT)] == [], upgraded.stdout
    assert "applied migration 0002 (Timestamps are one type" in upgraded.stderr  # the log: English, for programs
    current = cli("db", "current", "--control-db", url, env=japanese)
    assert current.returncode == 0 and english_words(current.stdout, url, "(current)") == [], current.stdout


def test_a_database_behind_is_refused_in_japanese(cli: Cli, tmp_path: Path) -> None:
    """A command on a database an older bcpctl left: the refusal names its revision in Japanese."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = connect(url, create=True)
    try:
        upgrade(engine, "0005")
    finally:
        engine.dispose()
    env = {"BCPCTL_CONTROL_DB": url}
    english = cli("drill", "list", env={**_env({}), **env})
    japanese = cli("drill", "list", env={**_env({"BCPCTL_LANG": "ja"}), **env})
    assert english.returncode == japanese.returncode == 2, japanese.stderr
    assert "at revision 0005" in english.stderr
    line = japanese.stderr.removeprefix("bcpctl: error: ")
    assert "0005" in line and english_words(line, "bcpctl db upgrade") == [], line
    pending = cli("db", "current", "--control-db", url, env=_env({"BCPCTL_LANG": "ja"}))
    after_0005 = [revision for revision in migration_titles() if revision > "0005"]
    assert pending.returncode == 0 and len(pending.stdout.splitlines()) == 2 + len(after_0005), pending.stdout
    assert english_words(pending.stdout, url, "(behind)", "bcpctl db upgrade", *KEPT) == [], pending.stdout
