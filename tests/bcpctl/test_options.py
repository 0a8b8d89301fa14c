"""Shared options: one ``K=V`` parser for ``backup run --tag`` and ``dc run -e``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from backup.opening import init_repository
from bcpctl.options import key_value_pairs
from dc.errors import UsageError
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli


def _option(*decls: str) -> click.Option:
    return click.Option(list(decls), multiple=True)


def test_pairs_become_a_dict_values_may_hold_equals_and_later_keys_win() -> None:
    pairs = key_value_pairs(None, _option("--tag"), ("a=1", "b=x=y", "empty=", "a=2"))  # type: ignore[arg-type]
    assert pairs == {"a": "2", "b": "x=y", "empty": ""}
    assert key_value_pairs(None, _option("--tag"), ()) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["novalue", "=value", ""])
def test_a_pair_without_key_or_equals_names_the_option(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        key_value_pairs(None, _option("-e", "--extra-var"), ("ok=1", bad))  # type: ignore[arg-type]
    assert str(err.value) == f"invalid --extra-var '{bad}': use KEY=VALUE"


def test_backup_tags_round_trip_and_a_bad_tag_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a", encoding="utf-8")
    base = ("backup", "run", "--repo", str(repo), "--source", f"path:{source}")
    bad = cli(*base, "--tag", "reason=drill", "--tag", "oops")
    assert bad.returncode == 2 and bad.stderr == "bcpctl: error: invalid --tag 'oops': use KEY=VALUE\n"
    assert not list(repo.rglob("snapshots/*"))
    good = cli(*base, "--tag", "reason=drill", "--tag", "query=a=b")
    assert good.returncode == 0, good.stderr
    listed = cli("snapshots", "--repo", str(repo), "--json")
    (snapshot,) = json.loads(listed.stdout)
    assert snapshot["tags"] == {"reason": "drill", "query": "a=b"}
