"""restore --include/--exclude over any tree (the generator of test_restore_properties): exactly
what the selection keeps comes back, with the directories above it, and nothing else."""

from __future__ import annotations

import os
import posixpath
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup import restorefiles
from backup.patterns import Selection
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from backup.tree import iter_tree
from dc.errors import UsageError
from tests.backup.conftest import tree_state
from tests.backup.test_restore_properties import Spec, build, trees


def _literal(name: str) -> str:
    """A pattern naming exactly ``name``'s characters (control characters by '?')."""
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else "\\" + c if c in "*?[]\\" else c for c in name)


@st.composite
def selections(draw: st.DrawFn, paths: list[str]) -> Selection:
    def pattern() -> str:
        path = draw(st.sampled_from(paths))
        form = draw(st.sampled_from(["anchored", "name", "star", "globstar", "parent"]))
        if form == "anchored":
            return "/" + "/".join(_literal(p) for p in path.split("/"))
        if form == "name":
            return _literal(posixpath.basename(path))
        if form == "star":
            return "/".join(["*"] * len(path.split("/")))
        if form == "globstar":
            return "**/" + _literal(posixpath.basename(path))
        parent = posixpath.dirname(path)
        return "/" + "/".join(_literal(p) for p in parent.split("/")) + "/*" if parent else "*"

    include = [pattern() for _ in range(draw(st.integers(0, 2)))]
    exclude = [pattern() for _ in range(draw(st.integers(0, 2)))]
    return Selection(include, exclude)


@pytest.mark.parametrize("forked", [True, False], ids=["forked-writers", "threaded-writers"])
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=trees(), data=st.data())
def test_any_selection_restores_exactly_what_it_keeps(  # type: ignore[no-untyped-def]
    repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: bool, spec: Spec, data: st.DataObject
) -> None:
    """Either set of writers (processes for a local repository, threads for remote storage or
    a threaded process) restores exactly the selection."""
    monkeypatch.setattr(restorefiles, "can_fork", lambda repo: forked)
    work = tmp_path / uuid.uuid4().hex
    src = work / "src"
    build(src, spec)
    done = run_backup(repo, BackupRequest(parse_source(f"path:{src}")))
    snap = find_snapshot(repo, done.snapshot_id)
    entries = list(iter_tree(repo.read_blob, snap.tree))
    select = data.draw(selections([e["path"] for e in entries]))
    if not any(select(e["path"]) for e in entries):
        with pytest.raises(UsageError, match="keep nothing"):
            restore_snapshot(repo, snap, work / "target", select=select)
        return
    result = restore_snapshot(repo, snap, work / "target", select=select)
    skipped = {line.split(": ")[0] for line in result.skipped}
    kept = {
        e["path"]
        for e in entries
        if select(e["path"]) and repr(e["path"]) not in skipped  # a hard link too: its first name need not be kept
    }
    expected = set(kept)
    for path in (e["path"] for e in entries if select(e["path"])):  # a skipped one's directories are made too
        while (path := posixpath.dirname(path)) and path not in expected:
            expected.add(path)
    restored = {os.fsdecode(p) for p in tree_state(work / "target")}
    assert restored == expected
    # what came back is what the source holds there
    source = tree_state(src, times=False)
    target = tree_state(work / "target", times=False)
    for path in target:
        if target[path][0] in ("file", "symlink"):
            assert target[path][2] == source[path][2], path


@pytest.mark.parametrize(
    ("include", "exclude"),
    [(["/a.txtt"], []), (["*.sql"], ["*.sql"]), ([], ["**"]), (["/d/*"], ["d"])],
    ids=["typo", "cancelled", "everything-excluded", "excluded-parent"],
)
def test_a_selection_that_keeps_nothing_is_refused_before_anything_is_written(  # type: ignore[no-untyped-def]
    repo, tmp_path: Path, include: list[str], exclude: list[str]
) -> None:
    """A mistyped --include restored nothing and said 'verified', exit 0: a restore of nothing
    is never what was asked."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "d/b.sql").write_text("b")
    snap = find_snapshot(repo, run_backup(repo, BackupRequest(parse_source(f"path:{src}"))).snapshot_id)
    with pytest.raises(UsageError, match="keep nothing") as refused:
        restore_snapshot(repo, snap, tmp_path / "target", select=Selection(include, exclude))
    assert refused.value.exit_code == 2
    assert not (tmp_path / "target").exists()


def test_a_selected_restore_announces_its_total_before_the_first_byte(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The bar of ``restore --include`` showed ``8.4/? MB`` and no ETA, though the validating
    pass knows how many bytes the selection holds before anything is written."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.bin").write_bytes(os.urandom(300_000))
    (src / "d/b.bin").write_bytes(os.urandom(70_000))
    snap = find_snapshot(repo, run_backup(repo, BackupRequest(parse_source(f"path:{src}"))).snapshot_id)
    seen: list[tuple[str, int]] = []
    restore_snapshot(
        repo,
        snap,
        tmp_path / "target",
        select=Selection(["/d"]),
        progress=lambda n: seen.append(("advance", n)),
        on_total=lambda n: seen.append(("total", n)),
    )
    assert seen[0] == ("total", 70_000)
    assert sum(n for what, n in seen if what == "advance") == 70_000
