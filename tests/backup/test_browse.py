"""ls, find, dump, diff and restore --include/--exclude on real repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backup.browse import dump_file, file_entry, find_entries, list_entries, shown
from backup.diff import diff_snapshots, table_changes
from backup.errors import TargetNotEmpty, VerificationFailed
from backup.filedigest import recorded
from backup.patterns import BadPattern, Selection
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.snapshot import Snapshot
from backup.sources import parse_source
from backup.tree import iter_tree
from dc.errors import UsageError
from tests.backup.conftest import make_tree, tree_state

BAD = os.fsdecode(b"bad\xffname.txt")  # not UTF-8
FILES: dict[str, bytes | str] = {
    "docs/a.txt": "alpha\n",
    "docs/sub/b.sql": "create table x();\n",
    "docs/tmp.tmp": "scratch\n",
    "we\nird": "a newline in the name\n",
    "star*[x]": "glob characters in the name\n",
    BAD: "undecodable\n",
    "link": "->docs/a.txt",
    "big.bin": os.urandom(3 * 1024 * 1024 + 17),
}


def _backup(repo, src: Path) -> Snapshot:  # type: ignore[no-untyped-def]
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="files"))
    return find_snapshot(repo, result.snapshot_id)


@pytest.fixture
def tree(repo, tmp_path: Path) -> tuple[Path, Snapshot]:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", FILES)
    os.link(src / "docs/a.txt", src / "hard")
    return src, _backup(repo, src)


def test_ls_lists_one_directory_or_everything_beneath_it(repo, tree) -> None:  # type: ignore[no-untyped-def]
    _, snap = tree
    root = {e.path for e in list_entries(repo, snap)}
    assert root == {"docs", "we\nird", "star*[x]", "bad\\xffname.txt", "link", "big.bin", "hard"}
    bad = next(e for e in list_entries(repo, snap) if e.path.startswith("bad"))
    assert bad.path_b64 is not None  # the exact bytes beside the escaped text
    assert {e.path for e in list_entries(repo, snap, "/docs/")} == {"docs/a.txt", "docs/sub", "docs/tmp.tmp"}
    assert {e.path for e in list_entries(repo, snap, "docs", recursive=True)} == {
        "docs/a.txt",
        "docs/sub",
        "docs/sub/b.sql",
        "docs/tmp.tmp",
    }
    (one,) = list_entries(repo, snap, "link")
    assert one.type == "symlink" and one.target == "docs/a.txt"


@pytest.mark.parametrize("path", ["../docs", "docs/../..", "docs//a", "a\x00", "nothing-here"])
def test_ls_refuses_hostile_and_missing_paths_with_exit_2(repo, tree, path: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as refused:
        list_entries(repo, tree[1], path)
    assert refused.value.exit_code == 2


def test_find_names_matches_across_snapshots_in_the_order_given(repo, tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, first = tree
    (src / "docs/sub/c.sql").write_text("new\n")
    second = _backup(repo, src)
    hits = find_entries(repo, [second, first], "*.sql")
    assert [(h.snapshot, h.entry.path) for h in hits] == [
        (second.id, "docs/sub/b.sql"),
        (second.id, "docs/sub/c.sql"),
        (first.id, "docs/sub/b.sql"),
    ]
    assert [h.entry.path for h in find_entries(repo, [first], r"star\*\[x]")] == ["star*[x]"]
    assert [h.entry.path for h in find_entries(repo, [first], "we?ird")] == ["we\nird"]
    assert sum(1 for _ in find_entries(repo, [first], "**")) == sum(1 for _ in iter_tree(repo.read_blob, first.tree))
    with pytest.raises(BadPattern):
        find_entries(repo, [first], "../*")


def test_ls_and_find_hand_out_entries_as_the_tree_is_read(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The first entry comes after one metadata blob, not after the whole tree: nothing is gathered."""
    src = make_tree(tmp_path / "many", {f"d{i:02d}/f{j:03d}": "" for i in range(12) for j in range(150)})
    snap = _backup(repo, src)
    tree_blobs = set(snap.tree)
    assert len(tree_blobs) > 4
    read: list[str] = []
    read_blob = repo.read_blob

    def counting(blob_id: bytes, **kwargs: object) -> bytes:
        read.append(blob_id.hex())
        return read_blob(blob_id, **kwargs)

    repo.read_blob = counting  # type: ignore[method-assign]  # the real repository, its reads counted
    for listing in (
        (hit.entry for hit in find_entries(repo, [snap], "*")),
        list_entries(repo, snap, recursive=True),
    ):
        read.clear()
        assert next(listing).path == "d00"
        assert len(tree_blobs.intersection(read)) == 1
        assert sum(1 for _ in listing) == 12 * 151 - 1
        assert tree_blobs <= set(read)


def test_dump_gives_the_exact_bytes_and_follows_a_hard_link(repo, tree) -> None:  # type: ignore[no-untyped-def]
    src, snap = tree
    for path in ("big.bin", BAD, "hard", "we\nird"):
        entry = file_entry(repo, snap, path)
        assert b"".join(dump_file(repo, snap, entry)) == (src / path).read_bytes()
    for not_a_file in ("docs", "link", "", "missing"):
        with pytest.raises(UsageError):
            file_entry(repo, snap, not_a_file)
    with pytest.raises(UsageError, match="name the one"):
        file_entry(repo, snap, None)


def test_dump_refuses_bytes_that_differ_from_the_record(repo, tree) -> None:  # type: ignore[no-untyped-def]
    _, snap = tree
    entry = dict(file_entry(repo, snap, "docs/a.txt"))
    algorithm, _ = recorded(entry)
    entry[algorithm] = "0" * 64
    with pytest.raises(VerificationFailed) as failed:
        b"".join(dump_file(repo, snap, entry))
    assert failed.value.exit_code == 1


def test_restore_include_exclude_writes_only_the_selection(repo, tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = tree
    target = tmp_path / "target"
    result = restore_snapshot(repo, snap, target, select=Selection(["docs", "hard"], ["*.tmp"]))
    assert set(tree_state(target)) == {b"docs", b"docs/a.txt", b"docs/sub", b"docs/sub/b.sql", b"hard"}
    assert (target / "docs/a.txt").read_bytes() == (src / "docs/a.txt").read_bytes()
    assert result.files == 2 and result.hardlinks == 1
    # a hard link whose first name is left out comes back as a file of its own
    alone = restore_snapshot(repo, snap, tmp_path / "alone", select=Selection(["hard"]))
    assert alone.files == 1 and alone.skipped_count == 0
    assert set(tree_state(tmp_path / "alone")) == {b"hard"}
    assert (tmp_path / "alone/hard").read_bytes() == (src / "hard").read_bytes()


def test_one_file_restored_alone_is_byte_identical_to_its_dump(repo, tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = tree
    target = tmp_path / "one"
    restore_snapshot(repo, snap, target, select=Selection(["/big.bin"]))
    assert set(tree_state(target)) == {b"big.bin"}
    dumped = b"".join(dump_file(repo, snap, file_entry(repo, snap, "big.bin")))
    assert (target / "big.bin").read_bytes() == dumped == (src / "big.bin").read_bytes()


def test_restoring_onto_the_source_path_needs_overwrite(repo, tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, snap = tree
    before = tree_state(src)
    for target in (src, tmp_path / "src" / ".." / "src"):
        with pytest.raises(TargetNotEmpty, match="--overwrite") as refused:
            restore_snapshot(repo, snap, target)
        assert refused.value.exit_code == 2 and "taken from" in refused.value.message
    assert tree_state(src) == before
    (src / "docs/a.txt").write_text("damaged\n")
    restore_snapshot(repo, snap, src, overwrite="if-changed")
    assert (src / "docs/a.txt").read_text() == "alpha\n"


def test_diff_names_what_was_added_removed_and_changed(repo, tree) -> None:  # type: ignore[no-untyped-def]
    src, first = tree
    (src / "docs/a.txt").write_text("alpha, changed\n")
    (src / "docs/tmp.tmp").unlink()
    (src / "docs/new.txt").write_text("new\n")
    os.chmod(src / "docs/sub/b.sql", 0o600)
    (src / "link").unlink()
    os.symlink("elsewhere", src / "link")
    second = _backup(repo, src)
    result = diff_snapshots(repo, first, second)
    by_path = {c.path: c for c in result.changes}
    assert by_path["docs/a.txt"].what == ["content", "size"] and by_path["docs/a.txt"].change == "changed"
    assert by_path["docs/tmp.tmp"].change == "removed" and by_path["docs/new.txt"].change == "added"
    assert by_path["docs/sub/b.sql"].what == ["mode"]
    assert by_path["link"].what == ["target"]
    assert "big.bin" not in by_path and "bad\\xffname.txt" not in by_path
    assert (result.added, result.removed) == (1, 1)
    scoped = diff_snapshots(repo, first, second, "docs/sub")
    assert [c.path for c in scoped.changes] == ["docs/sub/b.sql"]
    assert diff_snapshots(repo, second, second).changes == []
    flipped = diff_snapshots(repo, second, first)
    assert (flipped.added, flipped.removed, flipped.changed) == (result.removed, result.added, result.changed)


def test_diff_of_a_path_neither_snapshot_holds_is_refused_not_no_change(repo, tree) -> None:  # type: ignore[no-untyped-def]
    """A mistyped PATH said "0 added, 0 removed, 0 changed": as good as a real "nothing changed"."""
    src, first = tree
    (src / "docs/new.txt").write_text("new\n")
    second = _backup(repo, src)
    with pytest.raises(UsageError, match=r"neither snapshot .* holds") as refused:
        diff_snapshots(repo, first, second, "docs/typo")
    assert refused.value.exit_code == 2
    assert [c.path for c in diff_snapshots(repo, first, second, "docs/new.txt").changes] == ["docs/new.txt"]
    assert diff_snapshots(repo, first, second, "docs/sub").changes == []


def test_table_changes_name_every_table_whose_count_differs() -> None:
    changes = table_changes({"a": 1, "b": 2, "gone": 5}, {"a": 1, "b": 3, "new": 0})
    assert [(t.table, t.rows_before, t.rows_after, t.delta) for t in changes] == [
        ("b", 2, 3, 1),
        ("gone", 5, None, -5),
        ("new", None, 0, 0),
    ]


def test_backup_exclude_follows_the_same_rules(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(
        tmp_path / "ex",
        {"docs/a.tmp": "x", "docs/deep/b.tmp": "x", "top.tmp": "x", "a/cache/c": "x", "cache": "x", "keep": "x"},
    )
    request = BackupRequest(parse_source(f"path:{src}"), exclude=("/docs/*.tmp", "cache"))
    snap = find_snapshot(repo, run_backup(repo, request).snapshot_id)
    kept = {e.path for e in list_entries(repo, snap, recursive=True)}
    # '*' never crosses '/': docs/deep/b.tmp stays; a name without '/' matches at any depth
    assert kept == {"docs", "docs/deep", "docs/deep/b.tmp", "top.tmp", "a", "keep"}
    with pytest.raises(BadPattern):
        run_backup(repo, BackupRequest(parse_source(f"path:{src}"), exclude=("a**",)))


def test_diff_across_snapshot_versions_compares_content_by_chunks() -> None:
    """A file recorded with SHA-256 (version 1) and again with BLAKE3 (version 2) is the same
    content when its keyed chunk ids are; a changed chunk is a content change."""
    from backup.diff import _differences

    old = {"type": "file", "path": "a", "size": 3, "chunks": ["aa"], "sha256": "1" * 64}
    new = {"type": "file", "path": "a", "size": 3, "chunks": ["aa"], "blake3": "2" * 64, "sizes": [3]}
    assert _differences(old, new) == []
    assert _differences(old, {**new, "chunks": ["bb"]}) == ["content"]
    assert _differences(new, {**new, "blake3": "3" * 64}) == ["content"]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("住民\u3000台帳.xlsx", "住民\u3000台帳.xlsx"),  # a full-width space is part of a Japanese name
        ("no\u00a0break", "no\u00a0break"),
        ("we\nird", "we\\nird"),
        ("\x1b[2Jx", "\\x1b[2Jx"),
        ("c1\x9b", "c1\\x9b"),
        ("\u202eevil", "\\u202eevil"),
        (BAD, "bad\\xffname.txt"),
    ],
)
def test_a_name_is_shown_as_written_with_only_what_acts_on_a_terminal_escaped(name: str, line: str) -> None:
    assert shown(name) == line
