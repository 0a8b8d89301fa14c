"""The damage matrix: every kind of object × every kind of damage, through the real CLI.

A small repository (two systems, three snapshots sharing a blob, two operators' key slots)
is damaged one object at a time; each cell runs ``check``, ``check --read-data`` and a
``restore`` of every snapshot, then ``repair index --read-all-packs`` and ``repair snapshots
--forget --yes`` on a copy, and ``check --read-data`` again. Invariants, for every cell:

* no command says "internal error" or hangs;
* ``check --read-data`` detects destructive damage (flip, truncate, delete, move) and names
  the object; a copy or a stray file is either reported as such or not at all;
* ``check`` and ``restore`` never write to the repository;
* every snapshot that does not depend on the damaged object restores byte for byte;
* a snapshot that does depend on it restores everything else and leaves nothing partial;
* repair never loses a file that was still readable, and leaves a repository that checks clean.

Commands run through :mod:`tests.backup.zygote`: each is a process of its own with a real exit
status, forked from one that imported bcpctl once, so the 400-odd commands fit in the time budget.

The outcomes become ``docs/damage-matrix.md``; the test fails when that file differs from
what it generates. Regenerate it with::

    BCPCTL_UPDATE_DOCS=1 python -m pytest tests/backup/test_damage_matrix.py
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.snapshot import list_snapshots
from backup.tree import iter_tree
from dc.errors import BcpError
from storage.local import LocalBackend
from tests.backup.conftest import tree_digest
from tests.backup.damage_matrix import (
    ADDED_ROLES,
    ALL,
    DAMAGES,
    DESTRUCTIVE,
    KINDS,
    LEASE_BODY,
    Roles,
    blames,
    copy_repo,
    damage,
    describe_check,
    internal_error,
    names_victim,
    sanitize,
    victim_of,
)
from tests.backup.small_repo import SmallRepo, build_small_repo, repo_state
from tests.backup.zygote import Zygote
from tests.conftest import PASSWORD

DOC = Path(__file__).resolve().parents[2] / "docs" / "damage-matrix.md"
UPDATE_ENV = "BCPCTL_UPDATE_DOCS"
TIMEOUT = 60
HARMLESS_WORDS = (
    "copy",
    "stray",
    "not a bcpctl object",
    "in no index",
    "not in the signed manifest",
    "lock object",
    "prune lease",
)

#: Invariants today's code breaks in cells that another engineer's branch owns. The test
#: asserts each still fails, so whoever merges the fix must delete its line here.
OWNED_ELSEWHERE: dict[tuple[str, str, str], str] = {}

RESTORE_CONTINUES = "restore continues past damage"
# TODO(owned by i15-restore): set to True once restore continues past a damaged blob and leaves
# nothing partial under a final name. Until then the invariant is checked in every cell and its
# failures are printed, not asserted: how far today's restore gets before it stops varies by run.
RESTORE_CONTINUES_ASSERTED = True


@dataclass
class Cell:
    kind: str
    damage: str
    check: str = ""
    read_data: str = ""
    restore: str = ""
    repair: str = ""
    after: str = ""
    #: invariant -> what broke it
    violations: dict[str, str] = field(default_factory=dict)


def _runner(zygote: Zygote, env: dict[str, str], cell: Cell) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        try:
            result = zygote.run(*args, env=env, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            cell.violations["no hang"] = f"bcpctl {args[0]} {args[1]} ran over {TIMEOUT} s"
            return subprocess.CompletedProcess(list(args), -9, "", "hung")
        if internal_error(result):
            cell.violations["no internal error"] = f"bcpctl {' '.join(args[:2])}: {result.stderr.strip()}"
        return result

    return run


def run_cell(zygote: Zygote, small: SmallRepo, work: Path, kind: str, how: str) -> Cell:
    cell = Cell(kind, how)
    where = work / f"{kind}-{how}".replace(" ", "-")
    repo = copy_repo(small.path, where / "repo")
    if kind == "lease":  # what a prune killed mid-run leaves
        (repo / "locks").mkdir(exist_ok=True)
        (repo / "locks" / "prune").write_bytes(LEASE_BODY)
    victim = victim_of(kind, small)
    added = damage(repo, victim.key, how)
    lost = victim.lost if how in DESTRUCTIVE else {}
    roles = Roles(
        {**({added: ADDED_ROLES[how]} if added else {}), victim.key: "it"},
        {s.id: s.label for s in small.snapshots},
    )
    run = _runner(zygote, {**os.environ, "BCPCTL_CACHE_DIR": str(where / "cache")}, cell)
    before = repo_state(repo)

    check = run("check", "--repo", str(repo), "--json")
    read_data = run("check", "--repo", str(repo), "--read-data", "--json")
    cell.check, cell.read_data = describe_check(check, roles, repo), describe_check(read_data, roles, repo)
    restores = {}
    for snap in small.snapshots:
        target = where / f"restore-{snap.label}"
        restores[snap.label] = (run("restore", snap.id, "--repo", str(repo), "--target", str(target)), target)
    if repo_state(repo) != before:
        cell.violations["check and restore never write"] = "the repository changed"
    _judge_detection(cell, read_data, victim.key, added, how)
    _judge_restores(cell, small, lost, restores, repo)

    repaired = copy_repo(repo, where / "repaired")
    repair_index = run("repair", "index", "--repo", str(repaired), "--read-all-packs", "--json")
    repair_snapshots = run("repair", "snapshots", "--repo", str(repaired), "--forget", "--yes", "--json")
    after = run("check", "--repo", str(repaired), "--read-data", "--json")
    cell.repair = _describe_repair(repair_index, repair_snapshots, repaired)
    cell.after = describe_check(after, roles, repaired)
    _judge_repair(cell, small, lost, repaired, after)
    return cell


def _judge_detection(
    cell: Cell, result: subprocess.CompletedProcess[str], key: str, added: str | None, how: str
) -> None:
    if how in DESTRUCTIVE:
        if cell.kind == "lease":
            return  # not integrity-protected by design: it only keeps two prunes apart
        keys = ["config", "no bcpctl repository"] if cell.kind == "config" else [k for k in (key, added) if k]
        if result.returncode == 0 or not names_victim(result, keys):
            cell.violations["damage detected"] = f"check --read-data: {cell.read_data}"
        return
    if (
        result.returncode not in (0, 1)
        or blames(result, key)
        or (result.returncode == 1 and added and not names_victim(result, [added], HARMLESS_WORDS))
    ):
        cell.violations["a copy or stray is harmless"] = f"check --read-data: {cell.read_data}"


def _judge_restores(
    cell: Cell,
    small: SmallRepo,
    lost: dict[str, set[str] | str],
    restores: dict[str, tuple[subprocess.CompletedProcess[str], Path]],
    repo: Path,
) -> None:
    failed: dict[str, list[str]] = {}
    for snap in small.snapshots:
        result, target = restores[snap.label]
        restored = tree_digest(target) if target.is_dir() else {}
        intact = result.returncode == 0 and restored == snap.expected
        if not intact:
            failed.setdefault(f"{result.returncode}: {_error(result, repo)}", []).append(snap.label)
        gone = lost.get(snap.label) or set()
        if not gone:
            if not intact:
                cell.violations["snapshots not depending on it restore"] = f"{snap.label}: {result.stderr.strip()}"
        elif gone != ALL and not intact:
            missing = {p for p, v in snap.expected.items() if p not in gone and restored.get(p) != v}
            partial = {p for p in gone if p in restored and restored[p] != snap.expected[p]}
            if result.returncode == 0 or missing or partial:
                cell.violations[RESTORE_CONTINUES] = (
                    f"{snap.label}: exit {result.returncode}, {len(missing)} undamaged file(s) not restored, "
                    f"{len(partial)} damaged file(s) left under their names"
                )
    ok = len(small.snapshots) - sum(len(labels) for labels in failed.values())
    described = [f"{', '.join(labels)} {outcome}" for outcome, labels in failed.items()]
    cell.restore = "; ".join(([f"{ok} ok"] if ok else []) + described)


def _error(result: subprocess.CompletedProcess[str], repo: Path) -> str:
    text = sanitize(result.stderr.removeprefix("bcpctl: error: "), repo)
    return text[:70] + ("…" if len(text) > 70 else "") if text else "ok"


def _describe_repair(
    index: subprocess.CompletedProcess[str], snaps: subprocess.CompletedProcess[str], repo: Path
) -> str:
    parts = []
    if index.returncode == 0:
        d = json.loads(index.stdout)
        counts = {
            "moved": len(d["moved"]),
            "indexed": len(d["packs_indexed"]),
            "salvaged": len(d["packs_salvaged"]),
            "removed": len(d["removed"]),
            "left": len(d["left"]),
        }
        done = ", ".join(f"{word} {n}" for word, n in counts.items() if n) or "nothing to do"
        parts.append(f"index 0: {done}")
    else:
        parts.append(f"index {index.returncode}: {_error(index, repo)}")
    if snaps.returncode == 0:
        d = json.loads(snaps.stdout)
        rewritten = sum(1 for _original, new in d["rewritten"] if new)
        forgotten = len(d["removed"]) - rewritten
        done = (
            ", ".join(f"{word} {n}" for word, n in (("rewrote", rewritten), ("removed", forgotten)) if n)
            or "nothing to do"
        )
        parts.append(f"snapshots 0: {done}")
    else:
        parts.append(f"snapshots {snaps.returncode}: {_error(snaps, repo)}")
    return "; ".join(parts)


def readable_files(repo: Path) -> dict[str, set[str]] | None:
    """Per snapshot time, the files whose every blob reads and whose SHA-256 matches; None if
    the repository does not open. In-process: what a perfect restore would get back."""
    try:
        with open_repository(LocalBackend(repo), PASSWORD, sign_on_close=False) as r:
            found: dict[str, set[str]] = {}
            for snapshot in list_snapshots(r, errors={}):
                files = found.setdefault(snapshot.time.isoformat(), set())
                for tree_id in snapshot.tree:
                    try:
                        entries = list(iter_tree(r.read_blob, (tree_id,)))
                    except BcpError:
                        continue
                    for entry in entries:
                        if entry["type"] == "file" and _reads(r, entry):
                            files.add(entry["path"])
            return found
    except BcpError:
        return None


def _reads(repo, entry: dict) -> bool:  # type: ignore[no-untyped-def]
    from backup.filedigest import hasher, recorded

    algorithm, want = recorded(entry)
    digest = hasher(algorithm)
    try:
        for chunk in entry.get("chunks", ()):
            digest.update(repo.read_blob(bytes.fromhex(chunk)))
    except BcpError:
        return False
    return digest.hexdigest() == want


def _judge_repair(
    cell: Cell,
    small: SmallRepo,
    lost: dict[str, set[str] | str],
    repaired: Path,
    after: subprocess.CompletedProcess[str],
) -> None:
    readable = readable_files(repaired)
    if readable is None:
        return  # nothing opens it (config damage): nothing was readable either
    for snap in small.snapshots:
        gone = lost.get(snap.label) or set()
        if gone == ALL:
            continue
        wanted = {p for p, v in snap.expected.items() if v[0] == "file"} - set(gone)
        missing = wanted - readable.get(snap.time, set())
        if missing:
            cell.violations["repair keeps what is readable"] = f"{snap.label} lost {sorted(missing)}"
    if after.returncode != 0:
        cell.violations["repair leaves a clean repository"] = f"check --read-data after repair: {cell.after}"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallRepo:
    root = tmp_path_factory.mktemp("matrix")
    saved = os.environ.get("BCPCTL_CACHE_DIR")
    os.environ["BCPCTL_CACHE_DIR"] = str(root / "cache")
    try:
        return build_small_repo(root)
    finally:
        if saved is None:
            os.environ.pop("BCPCTL_CACHE_DIR", None)
        else:
            os.environ["BCPCTL_CACHE_DIR"] = saved


def render(cells: list[Cell]) -> str:
    lines = [
        "# Damage matrix",
        "",
        "Generated by `tests/backup/test_damage_matrix.py`, which also asserts the invariants below;",
        "it fails when this file differs from what it generates. Regenerate with",
        "`BCPCTL_UPDATE_DOCS=1 python -m pytest tests/backup/test_damage_matrix.py`.",
        "",
        "The repository: two systems, three snapshots (`s1#1`, `s1#2`, `s2#1`) sharing one blob, one blob",
        "per pack, one index file per backup, two operators' key slots. One object is damaged per row:",
        "",
        "* **key slot**: the other operator's slot, which sorts before the one the commands unlock with;",
        "* **index file**: the one of `s1#2`'s backup (its tree and two new files);",
        "* **snapshot**: `s1#1`; **meta pack**: the tree of `s2#1`; **data pack**: `d.txt`, only in `s1#2`;",
        "* **manifest**, **config**; **lease**: `locks/prune`, as a killed prune leaves it.",
        "",
        "Damage: **flip** one byte in the middle; **truncate** to half; **delete**; **duplicate** the bytes",
        "under another name of the right shape; **move** to the wrong directory (data and meta swapped,",
        "index files into `snapshots/`, everything else into `index/`); **stray**: a text file",
        "`00-notes.txt` next to it.",
        "",
        "Cells: the exit code, then what the command named (*it*: the damaged object, *it (moved)*: where",
        "it went, *the copy*, *the stray*; snapshots by label); *notes* are reported but not failures.",
        "Restore: how many snapshots restored byte for byte, then each other one with its exit code and",
        "error. Repair runs `repair index --read-all-packs`, then `repair snapshots --forget --yes`, on a",
        "copy; the last column is `check --read-data` after both.",
        "",
        "Invariants asserted in every cell:",
        "",
        '* no command says "internal error" or runs over a minute;',
        "* `check --read-data` detects flip, truncate, delete and move, naming the object (or, for `config`,",
        "  refusing to open); a copy or stray is reported as such or not at all, never blamed on the",
        "  original. The lease is exempt: it is not integrity-protected and only keeps two prunes apart;",
        "* `check` and `restore` never write to the repository;",
        "* every snapshot that does not depend on the damaged object restores byte for byte;",
        "* repair keeps every file that still reads, and `check --read-data` passes after it.",
        "",
        "| object | damage | check | check --read-data | restore | repair | check after repair |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        row = [c.kind, c.damage, c.check, c.read_data, c.restore, c.repair, c.after]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines += ["", "## Invariants not yet holding", ""]
    if not RESTORE_CONTINUES_ASSERTED:
        lines.append(
            f"* **{RESTORE_CONTINUES}** (a snapshot that depends on a damaged blob still restores every other"
            " file and leaves nothing partial): checked in every cell, not yet asserted; owned by i15-restore."
        )
    for (kind, how, name), owner in sorted(OWNED_ELSEWHERE.items()):
        lines.append(f"* {kind} / {how}: **{name}**; owned by {owner}.")
    if RESTORE_CONTINUES_ASSERTED and not OWNED_ELSEWHERE:
        lines.append("None: every invariant holds in every cell.")
    return "\n".join(lines) + "\n"


def test_damage_matrix(small: SmallRepo, tmp_path: Path) -> None:
    cells_todo = [(kind, how) for kind in KINDS for how in DAMAGES]
    (tmp_path / "zygote").mkdir()
    with Zygote(tmp_path / "zygote") as zygote, ThreadPoolExecutor(max_workers=2) as pool:
        cells = list(pool.map(lambda cell: run_cell(zygote, small, tmp_path, *cell), cells_todo))

    unexpected = {
        (c.kind, c.damage, name): why
        for c in cells
        for name, why in c.violations.items()
        if (c.kind, c.damage, name) not in OWNED_ELSEWHERE and (name != RESTORE_CONTINUES or RESTORE_CONTINUES_ASSERTED)
    }
    for c in cells:
        if RESTORE_CONTINUES in c.violations and not RESTORE_CONTINUES_ASSERTED:
            print(f"not yet holding ({c.kind} / {c.damage}): {RESTORE_CONTINUES}: {c.violations[RESTORE_CONTINUES]}")
    fixed = {
        key: owner
        for key, owner in OWNED_ELSEWHERE.items()
        if key[2] not in next(c for c in cells if (c.kind, c.damage) == key[:2]).violations
    }
    text = render(cells)
    if os.environ.get(UPDATE_ENV):
        DOC.write_text(text)
    assert not unexpected, "invariants broken:\n" + "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert not fixed, f"these now hold: delete them from OWNED_ELSEWHERE: {sorted(fixed)}"
    assert DOC.exists() and DOC.read_text() == text, f"{DOC.name} is out of date: rerun with {UPDATE_ENV}=1"
