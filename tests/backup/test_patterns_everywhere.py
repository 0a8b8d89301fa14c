"""One pattern, one meaning: for any tree and any glob, what ``find`` names, what
``restore --include`` and ``--exclude`` write and what ``backup --exclude`` keeps are the same
set of paths (docs/restore.md, "Patterns"), hostile names included."""

from __future__ import annotations

import base64
import os
import posixpath
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backup.browse import find_entries
from backup.patterns import BadPattern, Selection, compile_pattern
from backup.restorer import restore_snapshot
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from backup.tree import iter_tree
from dc.errors import UsageError
from tests.backup.conftest import tree_state
from tests.backup.test_restore_properties import Spec, build, trees


@st.composite
def globs(draw: st.DrawFn, paths: list[str]) -> str:
    """A glob made from a path of the tree, some characters turned into wildcards or sets,
    anchored or not, or a ``**`` put in."""
    parts = draw(st.sampled_from(paths)).split("/")
    parts = parts[: draw(st.integers(1, len(parts)))]
    out = []
    for part in parts:
        text = ""
        for c in part:
            how = draw(st.sampled_from(["same", "same", "same", "?", "*", "set", "notset"]))
            literal = "?" if ord(c) < 32 or ord(c) == 127 else "\\" + c if c in "*?[]\\" else c
            if how == "same" or (how in ("set", "notset") and literal != c):
                text += literal
            elif how == "set":
                text += f"[{c}x]"
            elif how == "notset":
                text += "[!\u2603]"  # any character but one no name here holds
            else:
                text += how
        out.append(text or "*")
    if draw(st.booleans()) and len(out) > 1:
        out.insert(draw(st.integers(0, len(out) - 1)), "**")
    pattern = "/".join(out)
    return draw(st.sampled_from(["", "/"])) + pattern + draw(st.sampled_from(["", "/"]))


def _beneath_any(path: str, found: set[str]) -> bool:
    while path:
        if path in found:
            return True
        path = posixpath.dirname(path)
    return False


def _with_parents(paths: set[str]) -> set[str]:
    out = set(paths)
    for path in paths:
        while path := posixpath.dirname(path):
            out.add(path)
    return out


@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=trees(), data=st.data())
def test_find_restore_and_backup_agree_on_what_a_pattern_matches(  # type: ignore[no-untyped-def]
    repo, tmp_path: Path, spec: Spec, data: st.DataObject
) -> None:
    work = tmp_path / uuid.uuid4().hex
    src = work / "src"
    build(src, spec)
    snap = find_snapshot(repo, run_backup(repo, BackupRequest(parse_source(f"path:{src}"))).snapshot_id)
    entries = [e["path"] for e in iter_tree(repo.read_blob, snap.tree)]
    pattern = data.draw(globs(entries))
    try:
        compile_pattern(pattern)
    except BadPattern:
        assume(False)
    found = {
        os.fsdecode(base64.b64decode(m.entry.path_b64)) if m.entry.path_b64 else m.entry.path
        for m in find_entries(repo, [snap], pattern)
    }
    matched = {p for p in entries if _beneath_any(p, found)}

    for option, expected in (("include", matched), ("exclude", set(entries) - matched)):
        target = work / option
        select = Selection(**{option: [pattern]})
        if not expected:
            with pytest.raises(UsageError, match="keep nothing"):
                restore_snapshot(repo, snap, target, select=select)
            continue
        result = restore_snapshot(repo, snap, target, select=select)
        skipped = {line.split(": ")[0] for line in result.skipped}
        wanted = {p for p in expected if repr(p) not in skipped}
        made = (_with_parents(expected) - expected) | wanted  # a skipped entry's directories are made too
        assert {os.fsdecode(p) for p in tree_state(target)} == made, (option, pattern)

    kept = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), exclude=(pattern,)))
    kept_paths = {e["path"] for e in iter_tree(repo.read_blob, find_snapshot(repo, kept.snapshot_id).tree)}
    assert kept_paths == set(entries) - matched, pattern
