"""One suite, every backend: the contracts documented in ``storage/backend.py``.

Like restic's ``internal/backend/test/suite.go``: each backend (local directory, S3 on a real
Ceph RGW, SFTP on a real sshd) runs exactly the same tests through ``open_backend``, i.e.
with the production wrappers in place.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from dc.errors import UsageError
from storage.backend import Backend
from storage.capabilities import NameChecking, as_capability, object_locking, versioned
from storage.errors import ObjectNotFound, StorageError
from storage.local import LocalBackend
from storage.metered import MeteredBackend
from storage.ratelimit import RateLimitedBackend, TokenBucket
from tests.servers.storage import KINDS

pytestmark = pytest.mark.parametrize("storage_url", KINDS, indirect=True)


def test_save_then_load_stat_and_list(backend: Backend) -> None:
    data = os.urandom(300_000)
    before = time.time()
    backend.save("data/ab/abcdef", data)
    assert backend.load("data/ab/abcdef") == data
    info = backend.stat("data/ab/abcdef")
    assert info.key == "data/ab/abcdef"
    assert info.size == len(data)
    # the storage's own clock, which prune's grace periods rely on: roughly now
    assert before - 120 < info.mtime < time.time() + 120
    listed = list(backend.list(""))
    assert [(i.key, i.size) for i in listed] == [("data/ab/abcdef", len(data))]


def test_save_accepts_bytes_bytearray_and_memoryview(backend: Backend) -> None:
    payload = os.urandom(5000)
    backend.save("a", payload)
    backend.save("b", bytearray(payload))
    backend.save("c", memoryview(payload)[1000:])
    assert backend.load("a") == payload
    assert backend.load("b") == payload
    assert backend.load("c") == payload[1000:]


def test_empty_object_round_trips(backend: Backend) -> None:
    backend.save("empty", b"")
    assert backend.load("empty") == b""
    assert backend.stat("empty").size == 0


def test_save_replaces_an_existing_object(backend: Backend) -> None:
    backend.save("config", b"first version")
    backend.save("config", b"second")
    assert backend.load("config") == b"second"
    assert [i.key for i in backend.list("")] == ["config"]


def test_ranged_loads_return_exactly_the_range(backend: Backend) -> None:
    data = bytes(range(256)) * 40
    backend.save("index/x", data)
    assert backend.load("index/x", 0, 10) == data[:10]
    assert backend.load("index/x", 100, 1000) == data[100:1100]
    assert backend.load("index/x", 5000) == data[5000:]
    assert backend.load("index/x", len(data) - 1, 1) == data[-1:]


def test_range_beyond_the_end_is_a_storage_error_not_a_missing_object(backend: Backend) -> None:
    backend.save("obj", b"0123456789")
    with pytest.raises(StorageError) as excinfo:
        backend.load("obj", 5, 10)
    assert not isinstance(excinfo.value, ObjectNotFound)
    with pytest.raises(StorageError) as excinfo:
        backend.load("obj", 20, 5)
    assert not isinstance(excinfo.value, ObjectNotFound)


def test_missing_objects_raise_object_not_found(backend: Backend) -> None:
    with pytest.raises(ObjectNotFound):
        backend.load("snapshots/" + "0" * 64)
    with pytest.raises(ObjectNotFound):
        backend.load("snapshots/" + "0" * 64, 0, 10)
    with pytest.raises(ObjectNotFound):
        backend.stat("nothing/here")


def test_list_filters_by_prefix_and_yields_each_object_once(backend: Backend) -> None:
    keys = ["config", "keys/k1", "data/00/00aa", "data/00/00bb", "data/ff/ffcc", "index/i1", "snapshots/s1"]
    for key in keys:
        backend.save(key, key.encode())
    everything = [i.key for i in backend.list("")]
    assert sorted(everything) == sorted(keys)
    assert len(everything) == len(set(everything))
    assert sorted(i.key for i in backend.list("data/")) == ["data/00/00aa", "data/00/00bb", "data/ff/ffcc"]
    assert sorted(i.key for i in backend.list("data/00/")) == ["data/00/00aa", "data/00/00bb"]
    assert [i.key for i in backend.list("index/")] == ["index/i1"]
    assert [i.key for i in backend.list("tombstones/")] == []
    sizes = {i.key: i.size for i in backend.list("")}
    assert sizes["data/ff/ffcc"] == len(b"data/ff/ffcc")


def test_remove_is_idempotent(backend: Backend) -> None:
    backend.save("locks/prune", b"lease")
    backend.remove("locks/prune")
    backend.remove("locks/prune")
    backend.remove("never/existed")
    with pytest.raises(ObjectNotFound):
        backend.stat("locks/prune")
    assert list(backend.list("locks/")) == []


def test_save_new_creates_only_if_absent(backend: Backend) -> None:
    assert backend.save_new("locks/prune", b"first holder") is True
    assert backend.save_new("locks/prune", b"second holder") is False
    assert backend.load("locks/prune") == b"first holder"
    backend.remove("locks/prune")
    assert backend.save_new("locks/prune", b"after release") is True


def test_save_new_has_exactly_one_winner_under_contention(backend: Backend) -> None:
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def contender(n: int) -> None:
        start.wait()
        won = backend.save_new("locks/race", f"holder {n}".encode())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


def test_readers_never_see_a_partial_object(backend: Backend) -> None:
    old, new = os.urandom(2 * 1024 * 1024), os.urandom(3 * 1024 * 1024)
    backend.save("manifest", old)
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            got = backend.load("manifest")
            seen.append(len(got))
            assert got in (old, new)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for payload in (new, old, new):
            backend.save("manifest", payload)
    finally:
        done.set()
        thread.join()
    assert seen, "the reader never ran"
    assert backend.load("manifest") == new


@pytest.mark.parametrize("bad", ["../escape", "/absolute", "a//b", "", "a/./b", "data/.."])
def test_keys_that_could_escape_the_root_are_refused(backend: Backend, bad: str) -> None:
    with pytest.raises(UsageError):
        backend.save(bad, b"x")
    with pytest.raises(UsageError):
        backend.load(bad)


def test_capabilities_and_url_are_reported(backend: Backend, storage_url: str) -> None:
    caps = backend.capabilities
    assert caps.object_lock is False  # none of these test locations has Object Lock (see test_objectlock)
    assert "SECRET" not in backend.url and "bcpctl-test-secret" not in backend.url
    assert backend.url.split("://")[0] in ("file", "s3", "sftp")


def test_optional_capabilities_are_typed_and_found_through_the_wrappers(backend: Backend) -> None:
    """What a backend can do beyond the protocol is found by type, never forwarded by name."""
    metered = MeteredBackend(RateLimitedBackend(backend, TokenBucket(10**12)))
    scheme = backend.url.split("://")[0]
    names = as_capability(metered, NameChecking)
    assert (names is not None) == (scheme == "s3")  # S3 holds each single PUT to its name
    assert object_locking(metered) is None and versioned(metered) is None  # this storage cannot use them
    assert (as_capability(metered, LocalBackend) is not None) == (scheme == "file")
    for name in ("checks_name", "lock_until", "extend_lock", "list_versions", "root", "location"):
        assert not hasattr(metered, name), f"a wrapper forwards {name}"
