"""Objects planted under the primary's ``wal/`` never reach the offsite, whatever their name hashes to."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.state import open_state
from replication.follow import Follower, FollowOptions
from replication.ledger import Ledger
from replication.sync import SyncOptions, replicate
from replication.walobjects import MAX_SEGMENT_STORED, MAX_SMALL_STORED, MIN_STORED, is_wal_object
from storage.backend import ObjectInfo
from storage.local import LocalBackend
from tests.replication import primary
from tests.replication.test_follow import SYSTEM, _push


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    primary.backup(backend, primary.write_tree(tmp_path / "data", files=4), system=SYSTEM)
    return backend


def _plant(backend: LocalBackend, folder: str, data: bytes) -> str:
    """An object whose name is its content hash: it passes every check that looks at hashes only."""
    key = f"{folder}/{hashlib.sha256(data).hexdigest()}"
    backend.save(key, data)
    return key


def test_a_follower_ships_real_segments_and_leaves_planted_objects_at_the_source(
    source: LocalBackend, tmp_path: Path
) -> None:
    ledger = Ledger(open_state())
    target = LocalBackend(tmp_path / "offsite", create=True)
    follower = Follower(source, target, ledger, SyncOptions(), FollowOptions())
    never = threading.Event()
    assert follower.full(never).ok
    # planted after the follower accepted the source: its WAL rounds meet them first
    rng = random.Random(7)
    planted = [
        _plant(source, f"wal/{SYSTEM}/notes.txt", rng.randbytes(4096)),  # not a WAL file name
        _plant(source, f"wal/{SYSTEM}/000000010000000000000009", b"tiny"),  # smaller than any sealed file
        _plant(source, f"wal/{SYSTEM}/00000002.history", rng.randbytes(MAX_SMALL_STORED + 1)),  # too big
        _plant(source, "wal/Goka/000000010000000000000009", rng.randbytes(4096)),  # no system name
        _plant(source, f"wal/{SYSTEM}/000000010000000000000009/deeper", rng.randbytes(4096)),
        _plant(source, f"wal/{SYSTEM}/000000010000000000000009.exe", rng.randbytes(4096)),
    ]
    segment = _push(source, tmp_path, 1, 1 << 16)
    round_ = follower.wal(never)
    assert round_.wal_copied == 1 and target.load(segment) == source.load(segment)
    assert sorted(round_.refused_wal) == sorted(planted)
    assert not round_.ok and round_.problem is not None and "not a WAL object" in round_.problem
    assert not follower.wal(never).problem  # named once, not every second
    assert {row.system for row in ledger.lag()} == {SYSTEM}  # "Goka" is no system: its object moved no lag
    # a full run leaves them too
    assert replicate(source, target, ledger).ok
    held = {info.key for info in target.list("wal/")}
    assert segment in held and not held & set(planted)


_SYSTEMS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True)
_HEX = st.text("0123456789ABCDEF", min_size=8, max_size=8)
_NAMES = st.one_of(
    st.tuples(_HEX, _HEX, _HEX).map(lambda t: ("".join(t), False)),
    st.tuples(_HEX, _HEX, _HEX).map(lambda t: ("".join(t) + ".partial", False)),
    _HEX.map(lambda t: (t + ".history", True)),
    st.tuples(_HEX, _HEX, _HEX, _HEX).map(lambda t: ("".join(t[:3]) + "." + t[3] + ".backup", True)),
)
_DIGESTS = st.text("0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(_SYSTEMS, _NAMES, _DIGESTS, st.integers(0, 1 << 31), st.integers(0, 6), st.text(min_size=1, max_size=3))
def test_only_the_shape_wal_push_stores_is_a_wal_object(
    system: str, named: tuple[str, bool], digest: str, size: int, where: int, noise: str
) -> None:
    name, small = named
    parts = ["wal", system, name, digest]
    limit = MAX_SMALL_STORED if small else MAX_SEGMENT_STORED
    assert is_wal_object(ObjectInfo("/".join(parts), size, 0.0)) == (MIN_STORED <= size <= limit)
    # anything added to one part (or a part added) and the object is no WAL object
    if where < len(parts):
        parts[where] += noise if where != 3 else "0"
    else:
        parts.append(noise)
    key = "/".join(parts)
    if where == 1 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in noise) and len(parts[1]) <= 63:
        return  # still a system name
    assert not is_wal_object(ObjectInfo(key, MIN_STORED, 0.0))
