"""The damage matrix's parts: what each kind of object is, how it is damaged, what a cell says.

Used by ``test_damage_matrix.py``, which runs every cell through the real CLI and writes the
table to ``docs/damage-matrix.md``. Cells describe outcomes in roles ("it", "s1#2", "manifest"),
never in object names or sizes, which differ in every run: the table must come out the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.backup.small_repo import SmallRepo

KINDS = ("key slot", "index file", "snapshot", "meta pack", "data pack", "manifest", "config", "lease")
DAMAGES = ("flip", "truncate", "delete", "duplicate", "move", "stray")
#: damage that destroys the object; the other kinds add a harmless extra object
DESTRUCTIVE = ("flip", "truncate", "delete", "move")
STRAY_NAME = "00-notes.txt"  # sorts before every object name: the worst case for name-ordered readers
LEASE_BODY = json.dumps({"host": "matrix-host", "pid": 999999}).encode()  # a prune killed long ago
ALL = "*"


@dataclass
class Victim:
    key: str
    #: snapshot label -> the files that cannot be restored without the object (ALL: every file)
    lost: dict[str, set[str] | str] = field(default_factory=dict)

    @property
    def dependents(self) -> set[str]:
        return {label for label, files in self.lost.items() if files}


def victim_of(kind: str, small: SmallRepo) -> Victim:
    """The object of each kind the matrix damages, and what each snapshot loses with it."""
    s1_2, s2_1, s1_1 = small.by_label("s1#2"), small.by_label("s2#1"), small.by_label("s1#1")
    if kind == "data pack":  # d.txt: only in s1#2, whose other files must still restore
        key = next(iter(s1_2.file_packs["d.txt"]))
        return Victim(key, {s.label: {p for p, packs in s.file_packs.items() if key in packs} for s in small.snapshots})
    if kind == "meta pack":
        return Victim(next(iter(s2_1.tree_packs)), {"s2#1": ALL})
    if kind == "index file":  # the index file of s1#2's backup: its tree and its two new files
        key = small.index_of[next(iter(s1_2.tree_packs))]
        named = {pack for pack, index in small.index_of.items() if index == key}
        lost: dict[str, set[str] | str] = {}
        for s in small.snapshots:
            lost[s.label] = ALL if s.tree_packs & named else {p for p, packs in s.file_packs.items() if packs & named}
        return Victim(key, lost)
    if kind == "snapshot":
        return Victim(f"snapshots/{s1_1.id}", {"s1#1": ALL})
    if kind == "key slot":  # another operator's slot; it sorts before the one the matrix unlocks with
        return Victim(f"keys/{small.other_slot}")
    if kind == "manifest":
        return Victim("manifest")
    if kind == "config":
        return Victim("config", {s.label: ALL for s in small.snapshots})
    return Victim("locks/prune")


def damage(repo: Path, key: str, how: str) -> str | None:
    """Damage the object at ``key``; return the key of the object the damage added or moved, if any."""
    path = repo / key
    data = path.read_bytes()
    parent = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    if how == "flip":
        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0x10
        path.write_bytes(bytes(flipped))
        return None
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
        return None
    if how == "delete":
        path.unlink()
        return None
    if how == "duplicate":
        new = _other_name(key)
        _write(repo / new, data)
        return new
    if how == "move":
        new = _wrong_place(key)
        _write(repo / new, data)
        path.unlink()
        return new
    new = parent + STRAY_NAME
    _write(repo / new, b"notes of an operator, saved here by mistake\n")
    return new


def _other_name(key: str) -> str:
    """The same bytes under a name of the right shape that is not theirs."""
    seed = hashlib.sha256(f"duplicate of {key}".encode()).hexdigest()
    if key.startswith(("data/", "meta/")):
        return f"{key[:4]}/{seed[:2]}/{seed}"
    if key.startswith(("index/", "snapshots/")):
        return key.rsplit("/", 1)[0] + "/" + seed
    if key.startswith("keys/"):
        return "keys/" + "0" * 16  # sorts first
    return key + ".copy"


def _wrong_place(key: str) -> str:
    """A type directory swapped (packs), or the object put into index/ (index files: into snapshots/)."""
    name = key.rsplit("/", 1)[-1]
    if key.startswith("data/"):
        return "meta/" + key.removeprefix("data/")
    if key.startswith("meta/"):
        return "data/" + key.removeprefix("meta/")
    if key.startswith("index/"):
        return "snapshots/" + name
    return "index/" + name


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def copy_repo(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# -- describing outcomes in roles ---------------------------------------------------------------


@dataclass
class Roles:
    """The words a cell uses for the objects and snapshots of one repository."""

    #: object key -> role: "it", "it (moved)", "the copy", "the stray"
    keys: dict[str, str]
    snapshot_labels: dict[str, str]

    def of(self, text: str) -> str:
        """The role of an object a report names."""
        for key, role in self.keys.items():
            if key in text:
                return role
        for snapshot_id, label in self.snapshot_labels.items():
            if snapshot_id in text or f"snapshot {snapshot_id[:8]}" in text:
                return label
        for prefix, role in _PREFIX_ROLES:
            if text.startswith(prefix):
                return role
        return "another object"


_PREFIX_ROLES = (
    ("index/", "an index file"),
    ("snapshots/", "a snapshot"),
    ("data/", "a data pack"),
    ("meta/", "a meta pack"),
    ("keys/", "a key slot"),
    ("locks/", "a lock"),
    ("manifest", "manifest"),
    ("config", "config"),
)
ADDED_ROLES = {"duplicate": "the copy", "move": "it (moved)", "stray": "the stray"}


_HEX = re.compile(r"[0-9a-f]{8,64}")
_NUMBER = re.compile(r"\d+")
_PACK_KEY = re.compile(r"\b(data|meta)/[0-9a-f]{2}/[0-9a-f]{64}")


def sanitize(message: str, repo: Path) -> str:
    """An error line without what differs between runs and machines: paths, ids, sizes, offsets."""
    text = message.replace(f"file://{repo}", "REPO").replace(str(repo), "REPO")
    text = _PACK_KEY.sub(r"\1/…", text)
    return _NUMBER.sub("N", _HEX.sub("…", text)).strip()


def internal_error(result: subprocess.CompletedProcess[str]) -> bool:
    return "internal error" in result.stderr


def describe_check(result: subprocess.CompletedProcess[str], roles: Roles, repo: Path) -> str:
    if result.returncode not in (0, 1) or not result.stdout.strip():
        return f"{result.returncode}: {sanitize(result.stderr.removeprefix('bcpctl: error: '), repo)}"
    report = json.loads(result.stdout)
    parts = []
    named = sorted({roles.of(p["object"] + " " + p["message"]) for p in report["problems"]})
    noted = sorted({roles.of(p["object"]) for p in report["notes"]} - {"manifest"})
    if named:
        parts.append("names " + ", ".join(named))
    if noted:
        parts.append("notes " + ", ".join(noted))
    broken = sorted({roles.of(s) for s in report["affected_snapshots"]})
    if broken:
        parts.append("breaks " + ", ".join(broken))
    return f"{result.returncode}" + (": " + "; ".join(parts) if parts else "")


def blames(result: subprocess.CompletedProcess[str], key: str) -> bool:
    """Whether a check report calls the object at ``key`` itself damaged."""
    if result.returncode != 1 or not result.stdout.strip():
        return False
    return any(p["object"] == key for p in json.loads(result.stdout)["problems"])


def names_victim(result: subprocess.CompletedProcess[str], keys: list[str], words: tuple[str, ...] = ()) -> bool:
    """Whether a check report (or an error line) names one of ``keys`` (with one of ``words``)."""
    if result.returncode not in (0, 1) or not result.stdout.strip():
        return any(k in result.stderr for k in keys) and (not words or any(w in result.stderr for w in words))
    report = json.loads(result.stdout)
    for finding in report["problems"] + report["notes"]:
        text = finding["object"] + " " + finding["message"]
        if any(k in text for k in keys) and (not words or any(w in text for w in words)):
            return True
    return False
