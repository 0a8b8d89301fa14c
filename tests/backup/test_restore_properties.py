"""Generative: any tree backs up and restores exactly, into any target, touching nothing outside.

Random source trees hold every entry type (files of random sizes, empty ones included,
directories, symlinks absolute / relative / escaping / dangling / non-UTF-8, hard links,
FIFOs and, as root, device nodes) under hostile names (newline, backslash, invalid UTF-8,
255 bytes). Random restore targets hold planted traps at the snapshot's paths: symlinks to
outside directories and files, hard links to outside files (some with the very bytes the
snapshot holds), FIFOs, directories with contents where a file goes.

Invariants: every backup without errors restores; the restored tree equals the source byte
for byte (names, types, modes, mtimes, contents, link targets, device numbers, hard-link
structure); nothing outside the target changes (a sentinel tree's bytes, modes and mtimes);
a non-empty target without ``--overwrite`` is refused with nothing written; nothing hangs.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backup.errors import TargetNotEmpty
from backup.restorer import restore_snapshot
from backup.restoretarget import TEMP_PREFIX
from backup.run import BackupRequest, run_backup
from backup.snapref import find_snapshot
from backup.sources import parse_source
from tests.backup.conftest import link_groups, tree_state
from tests.conftest import Cli

AS_ROOT = os.geteuid() == 0
HOSTILE_NAMES = [
    b"new\nline",
    b"back\\slash",
    b"x\xff\xfe",
    b"\xe4\xbd\x8f\xe6\xb0\x91",
    b"L" * 255,
    b" ",
    b"-rf",
    b"*",
]
LINK_TARGETS = [b"/etc/hostname", b"sibling", b"../../../../outside", b"no/such/file", b"x\xff", b"/"]
KINDS = ["file", "dir", "symlink", "hardlink", "file", "dir", "hardlink", "fifo", *(["device"] if AS_ROOT else [])]
TRAPS_AT_FILES = ["link-to-dir", "link-to-file", "hardlink-outside", "hardlink-same", "fifo", "dir", "file"]
TRAPS_AT_DIRS = ["link-to-dir", "link-to-file", "hardlink-outside", "fifo", "file"]

names = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.binary(min_size=1, max_size=12)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .map(lambda b: b"_" + b if b in (b".", b"..") else b),
)


@dataclass
class Spec:
    """A source tree: ``(path, kind, detail)`` in creation order."""

    entries: list[tuple[bytes, str, object]] = field(default_factory=list)


@st.composite
def trees(draw: st.DrawFn) -> Spec:
    spec = Spec()
    dirs: list[bytes] = [b""]
    files: list[bytes] = []
    #: what a hard link may name: any non-directory (hostile finding 8)
    linkable: list[bytes] = []
    used: set[bytes] = set()
    for _ in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from(dirs))
        path = (parent + b"/" if parent else b"") + draw(names)
        if path in used or len(path) > 3000:
            continue
        used.add(path)
        kind = draw(st.sampled_from(KINDS))
        if kind == "hardlink" and not linkable:
            kind = "file"
        if kind == "file":
            size = draw(st.sampled_from([0, 1, 100, 5000, 70_000, 300_000]))
            detail: object = (
                size,
                draw(st.integers(0, 2**32)),
                draw(st.sampled_from([0o644, 0o600, 0o755, 0o400, 0o4755])),
            )
            files.append(path)
        elif kind == "dir":
            detail = draw(st.sampled_from([0o755, 0o700, 0o555, 0o1777]))
            dirs.append(path)
        elif kind == "symlink":
            detail = draw(st.sampled_from(LINK_TARGETS))
        elif kind == "hardlink":
            detail = draw(st.sampled_from(linkable))
        elif kind == "fifo":
            detail = draw(st.sampled_from([0o644, 0o600, 0o622]))
        else:
            detail = draw(st.sampled_from([(1, 3), (1, 5), (7, 0)]))
        if kind in ("file", "symlink", "fifo", "device"):
            linkable.append(path)
        spec.entries.append((path, kind, detail))
    return spec


def build(root: Path, spec: Spec) -> dict[bytes, str]:
    """Create the tree; return each path's kind (what a trap may replace)."""
    base = os.fsencode(root)
    os.makedirs(base)
    kinds: dict[bytes, str] = {}
    modes: list[tuple[bytes, int]] = []
    for path, kind, detail in spec.entries:
        full = base + b"/" + path
        if kind == "file":
            size, seed, mode = detail  # type: ignore[misc]
            with open(full, "wb") as f:
                f.write(random.Random(seed).randbytes(size))
            modes.append((full, mode))
        elif kind == "dir":
            os.mkdir(full)
            modes.append((full, detail))  # type: ignore[arg-type]
        elif kind == "symlink":
            os.symlink(detail, full)  # type: ignore[arg-type]
        elif kind == "hardlink":
            os.link(base + b"/" + detail, full, follow_symlinks=False)  # type: ignore[operator]
            if kinds[detail] not in ("file", "hardlink"):  # type: ignore[index]
                kind = "hardlink-other"  # another name of a link or node: no file bytes to copy
        elif kind == "fifo":
            os.mkfifo(full, 0o600)
            modes.append((full, detail))  # type: ignore[arg-type]
        else:
            os.mknod(full, stat.S_IFCHR | 0o600, os.makedev(*detail))  # type: ignore[misc]
        kinds[path] = kind
    for full, mode in reversed(modes):  # children first: a 0555 parent is chmodded last
        os.chmod(full, mode)
    return kinds


def sentinel(root: Path) -> Path:
    (root / "dir").mkdir(parents=True)
    (root / "dir/inner").write_bytes(b"inner")
    (root / "file").write_bytes(b"outside")
    for path in [*root.rglob("*"), root]:
        os.chmod(path, 0o640 if path.is_file() else 0o750)
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return root


def plant(target: Path, src: Path, outside: Path, kinds: dict[bytes, str], choices: list[tuple[int, int]]) -> int:
    """Plant traps at some of the snapshot's paths (never one beneath another); return how many."""
    base, src_base = os.fsencode(target), os.fsencode(src)
    os.makedirs(base, exist_ok=True)
    paths = sorted(kinds)
    planted: list[bytes] = []
    for pick, trap_pick in choices:
        path = paths[pick % len(paths)]
        if any(path == p or path.startswith(p + b"/") or p.startswith(path + b"/") for p in planted):
            continue
        traps = TRAPS_AT_DIRS if kinds[path] == "dir" else TRAPS_AT_FILES
        trap = traps[trap_pick % len(traps)]
        if trap == "hardlink-same" and kinds[path] not in ("file", "hardlink"):
            trap = "hardlink-outside"
        full = base + b"/" + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if trap == "link-to-dir":
            os.symlink(outside / "dir", full)
        elif trap == "link-to-file":
            os.symlink(outside / "file", full)
        elif trap == "hardlink-outside":
            os.link(outside / "file", full)
        elif trap == "hardlink-same":  # an outside file with the snapshot's very bytes
            same = outside / f"same-{len(planted)}"
            shutil.copyfile(src_base + b"/" + path, same)
            os.utime(same, ns=(1, 1))
            os.link(same, full)
        elif trap == "fifo":
            os.mkfifo(full)
        elif trap == "dir":
            os.mkdir(full)
            os.symlink(outside / "dir", full + b"/into-outside")
            with open(full + b"/junk", "wb") as f:
                f.write(b"junk")
        else:
            with open(full, "wb") as f:
                f.write(b"a file at the wrong place")
        planted.append(path)
        event(f"trap: {trap} at a {kinds[path]}")
    return len(planted)


def same_tree(restored: Path, src: Path) -> None:
    assert tree_state(restored) == tree_state(src, times=True)
    assert link_groups(restored) == link_groups(src)


@pytest.mark.timeout(120, method="thread")
@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    spec=trees(),
    target_kind=st.sampled_from(["trapped", "absent", "trapped", "empty", "trapped"]),
    overwrite=st.sampled_from(["if-changed", "always"]),
    choices=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=4),
    workers=st.sampled_from([1, 2]),
)
def test_any_tree_restores_exactly_into_any_target(
    repo, tmp_path: Path, spec: Spec, target_kind: str, overwrite: str, choices: list[tuple[int, int]], workers: int
) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / uuid.uuid4().hex
    src = work / "src"
    kinds = build(src, spec)
    outside = sentinel(work / "outside")
    result = run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system=work.name))
    assert result.errors == []  # a backup that exits 0 ...
    snap = find_snapshot(repo, result.snapshot_id)
    target = work / "target"
    if target_kind == "empty":
        target.mkdir()
    planted = plant(target, src, outside, kinds, choices) if target_kind == "trapped" and kinds else 0
    event(f"entries: {min(len(kinds), 8)}+" if len(kinds) >= 8 else f"entries: {len(kinds)}")
    event(f"planted traps: {planted}")
    for kind in set(kinds.values()):
        event(f"has {kind}")
    before = tree_state(outside)
    if planted:
        trapped = tree_state(target)
        with pytest.raises(TargetNotEmpty):
            restore_snapshot(repo, snap, target, workers=workers)
        assert tree_state(target) == trapped
    restored = restore_snapshot(repo, snap, target, overwrite=overwrite if planted else "never", workers=workers)  # type: ignore[arg-type]
    assert not restored.failed  # ... restores
    same_tree(target, src)
    assert tree_state(outside) == before
    # restoring again over the result changes nothing either
    restore_snapshot(repo, snap, target, overwrite=overwrite, workers=workers)  # type: ignore[arg-type]
    same_tree(target, src)
    assert tree_state(outside) == before
    assert not any(TEMP_PREFIX.encode() in path for path in tree_state(target))


@pytest.mark.timeout(120, method="thread")
@settings(
    max_examples=2,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=trees(), choices=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=4))
def test_the_cli_restores_any_tree_past_planted_traps(
    cli: Cli, tmp_path: Path, spec: Spec, choices: list[tuple[int, int]]
) -> None:
    work = tmp_path / uuid.uuid4().hex
    src = work / "src"
    kinds = build(src, spec)
    outside = sentinel(work / "outside")
    repo = str(work / "repo")
    assert cli("repo", "init", "--repo", repo, timeout=60).returncode == 0
    backed = cli("backup", "run", "--repo", repo, "--source", f"path:{src}", timeout=60)
    assert backed.returncode == 0, backed.stderr
    target = work / "target"
    plant(target, src, outside, kinds, choices)
    before = tree_state(outside)
    done = cli("restore", "latest", "--repo", repo, "--target", str(target), "--overwrite", "always", timeout=60)
    assert done.returncode == 0, done.stderr
    same_tree(target, src)
    assert tree_state(outside) == before
