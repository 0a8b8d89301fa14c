"""Temporaries a killed writer leaves in a local repository, and the sweep that removes them.

A ``wal push`` killed mid-write leaves ``.{name}.tmp-{pid}-{ns}`` beside where its object
belongs: ``list`` never shows it, and nothing else would ever remove it. The sweep removes
exactly those no live writer holds and that are old enough; a write in progress, a young
temporary and any other dot-file stay.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.local import LEFTOVER_AGE, LocalBackend, is_leftover

KEY = "wal/juki/000000010000000000000003/" + "ab" * 32
KILLED_SAVE = f"""
from storage.local import LocalBackend
LocalBackend({{root!r}}).save({KEY!r}, b"x" * 65536)
"""


def _killed_save(root: Path) -> Path:
    env = os.environ | {"BCPCTL_FAILPOINTS": "storage.save.mid-object"}
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE.format(root=str(root))], env=env, check=False)
    assert done.returncode == -9
    (left,) = (root / KEY).parent.glob(".*.tmp-*")
    return left


def test_a_killed_writers_temporary_is_removed_once_old_and_nothing_else_is(tmp_path: Path) -> None:
    tmp_path = tmp_path / "repo"
    backend = LocalBackend(tmp_path, create=True)
    backend.save("wal/juki/000000010000000000000002/" + "cd" * 32, b"a whole object")
    left = _killed_save(tmp_path)
    other = left.with_name(".target")  # a dot-file that is not a temporary of ours
    other.write_bytes(b"not ours")
    assert KEY not in {i.key for i in backend.list("")}
    assert backend.remove_leftovers("") == []  # too young: its writer may not have locked it yet
    later = time.time() + LEFTOVER_AGE + 1
    assert backend.remove_leftovers("wal/juki/000000010000000000000002/", now=later) == []  # another folder
    assert backend.remove_leftovers("", now=later) == [str(left.relative_to(tmp_path))]
    assert not left.exists() and other.read_bytes() == b"not ours"
    assert [i.key for i in backend.list("")] == ["wal/juki/000000010000000000000002/" + "cd" * 32]


def test_a_temporary_a_running_writer_holds_is_never_removed(tmp_path: Path) -> None:
    tmp_path = tmp_path / "repo"
    backend = LocalBackend(tmp_path, create=True)
    path = tmp_path / f".{'ef' * 32}.tmp-{os.getpid()}-1"
    fd = backend._open_new(path)  # the lock a save takes on its temporary, held as a save does
    try:
        old = time.time() - 10 * LEFTOVER_AGE
        os.utime(path, (old, old))
        assert backend.remove_leftovers("", now=time.time()) == []
        assert path.exists()
    finally:
        os.close(fd)
    assert backend.remove_leftovers("", now=time.time()) == [path.name]  # its writer is gone


TEMPORARY = r"\A\.[a-f0-9]{1,64}\.tmp-[0-9]{1,7}-[0-9]{1,19}\Z"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    name=st.one_of(st.text(min_size=1, max_size=40), st.from_regex(TEMPORARY)),
    age=st.floats(min_value=-1e6, max_value=1e7, allow_nan=False),
    held=st.booleans(),
)
def test_only_an_unheld_old_temporary_is_a_leftover(name: str, age: float, held: bool) -> None:
    verdict = is_leftover(name, age, held)
    if re.fullmatch(TEMPORARY, name):
        assert verdict == (not held and age >= LEFTOVER_AGE)
    if not name.startswith(".") or ".tmp-" not in name:
        assert not verdict  # an object or someone else's dot-file: never
