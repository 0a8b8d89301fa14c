"""Hostile findings on ``bcpctl tag``.

1. A snapshot's old id still resolves after it was re-labelled (``find_snapshot`` reads any
   stored object), so ``bcpctl tag 6032d29f --add other=1`` run a second time with the id an
   operator copied from yesterday's listing wrote a second re-label of the same original: the
   snapshot was listed twice (and counted twice by retention), and the first change
   (``keep=yes``) was silently missing from the new one.
2. Tags with control characters were accepted and printed raw: ``--add $'k\\e[2J=v'`` clears
   the operator's screen in every later listing, a newline fakes a line of output. C1
   controls (CSI), bidi overrides and zero-width characters act on the reader the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import list_snapshots
from backup.sources import parse_source
from backup.tagging import tag_snapshot
from dc.errors import UsageError
from tests.backup.conftest import make_tree


@pytest.fixture
def original(repo, tmp_path: Path):  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", {"a.txt": "alpha\n"})
    done = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files", tags={"day": "1"}))
    return find_snapshot(repo, done.snapshot_id)


def test_tagging_a_relabelled_snapshot_by_its_old_id_changes_the_current_labels(repo, original) -> None:  # type: ignore[no-untyped-def]
    first = tag_snapshot(repo, original, add={"keep": "yes"})
    again = tag_snapshot(repo, find_snapshot(repo, original.id[:8]), add={"other": "1"})
    listed = list_snapshots(repo)
    assert [s.id for s in listed] == [again.snapshot.id]  # one snapshot, listed once
    assert listed[0].tags == {"day": "1", "keep": "yes", "other": "1"}  # no change lost
    assert again.original == first.snapshot.id
    third = tag_snapshot(repo, find_snapshot(repo, original.id), remove=["day"])
    assert [(s.id, s.tags) for s in list_snapshots(repo)] == [(third.snapshot.id, {"keep": "yes", "other": "1"})]


@pytest.mark.parametrize(
    "pair",
    [
        ("k\x1b[2J", "v"),
        ("k", "v\nfake line"),
        ("k", "\x07"),
        ("k\x7f", "v"),
        ("k", "\x9b2J"),  # C1 CSI: an escape sequence on an 8-bit terminal
        ("\u202ek", "v"),  # a bidi override: the label reads in another order than it is stored
        ("k", "yes\u200b"),  # zero-width: 'yes' that is not 'yes'
        ("k", "a\u2028b"),  # a line separator
    ],
)
def test_a_tag_with_a_control_character_is_refused(repo, original, pair: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    key, value = pair
    for kwargs in ({"add": {key: value}}, {"set_to": {key: value}}):
        with pytest.raises(UsageError, match="control character") as refused:
            tag_snapshot(repo, original, **kwargs)  # type: ignore[arg-type]
        assert refused.value.exit_code == 2
    assert [s.id for s in list_snapshots(repo)] == [original.id]


def test_a_tag_in_japanese_with_a_full_width_space_is_text(repo, original) -> None:  # type: ignore[no-untyped-def]
    tagged = tag_snapshot(repo, original, add={"担当": "五霞町\u3000住民課"})
    assert tagged.snapshot.tags == {"day": "1", "担当": "五霞町\u3000住民課"}


def test_a_backup_tag_with_a_control_character_is_refused(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src2", {"a.txt": "alpha\n"})
    with pytest.raises(UsageError, match="control character"):
        run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files", tags={"k": "\x1b]0;x\x07"}))
    assert list_snapshots(repo) == []
