"""The optional version-history capability (``storage.capabilities.Versioned``), on every backend.

Every backend says whether its storage keeps versions, and the answer is typed: ``versioned()``
returns the history only where ``capabilities.versions`` is true. Where it is (S3 with Object
Lock, S3 with plain versioning), the contracts of the protocol docstring hold on the real
Ceph RGW, through ``open_backend`` and so through the production wrappers.
"""

from __future__ import annotations

import os

import pytest

from storage.backend import Backend
from storage.capabilities import Versioned, versioned
from storage.errors import ObjectNotFound
from storage.retry import RetryingBackend
from tests.servers.storage import KINDS, VERSIONED_KINDS


@pytest.mark.parametrize("storage_url", KINDS, indirect=True)
def test_storage_without_versions_says_so(backend: Backend) -> None:
    """Local directories, SFTP and an S3 bucket without versioning keep no history."""
    assert backend.capabilities.versions is False
    assert versioned(backend) is None


@pytest.mark.parametrize("storage_url", VERSIONED_KINDS, indirect=True)
def test_versioned_storage_lists_every_version_and_delete_marker_newest_first(backend: Backend) -> None:
    history = versioned(backend)
    assert history is not None and isinstance(history, Versioned)
    assert isinstance(history, RetryingBackend)  # history requests are retried like every other
    first, second = os.urandom(3000), os.urandom(2000)
    backend.save("data/ab/abcd", first)
    backend.save("data/ab/abcd", second)
    backend.save("index/kept", b"kept")
    backend.remove("index/gone")  # a delete marker over nothing is still history
    backend.save("snapshots/s", b"snapshot")
    backend.remove("snapshots/s")

    versions = list(history.list_versions(""))
    by_key: dict[str, list] = {}
    for version in versions:
        by_key.setdefault(version.key, []).append(version)
    assert len({(v.key, v.version_id) for v in versions}) == len(versions)  # each once
    pack = sorted(by_key["data/ab/abcd"], key=lambda v: v.mtime, reverse=True)
    assert [v.size for v in pack] == [2000, 3000] and [v.latest for v in pack] == [True, False]
    assert not any(v.deleted for v in pack) and pack[0].etag != pack[1].etag
    snap = sorted(by_key["snapshots/s"], key=lambda v: v.mtime, reverse=True)
    assert [(v.deleted, v.latest) for v in snap] == [(True, True), (False, False)]
    assert [v.key for v in history.list_versions("data/")] == ["data/ab/abcd"] * 2
    assert sorted(i.key for i in backend.list("")) == ["data/ab/abcd", "index/kept"]  # plain reads: current only

    # reading an old version, whole and ranged
    assert history.load_version("data/ab/abcd", pack[1].version_id) == first
    assert history.load_version("data/ab/abcd", pack[1].version_id, 100, 50) == first[100:150]
    assert history.load_version("snapshots/s", snap[1].version_id) == b"snapshot"
    with pytest.raises(ObjectNotFound):
        history.load_version("data/ab/nothing", pack[1].version_id)


@pytest.mark.parametrize("storage_url", VERSIONED_KINDS, indirect=True)
def test_restoring_a_version_adds_a_current_one_and_keeps_the_history(backend: Backend) -> None:
    history = versioned(backend)
    assert history is not None
    good = os.urandom(5000)
    backend.save("data/cd/cdef", good)
    backend.save("data/cd/cdef", b"ransom note")
    backend.save("snapshots/t", b"snapshot")
    backend.remove("snapshots/t")
    old = {v.key: v for v in history.list_versions("") if not v.latest and not v.deleted}

    history.restore_version("data/cd/cdef", old["data/cd/cdef"].version_id)
    history.restore_version("snapshots/t", old["snapshots/t"].version_id)
    assert backend.load("data/cd/cdef") == good
    assert backend.load("snapshots/t") == b"snapshot"
    after = list(history.list_versions("data/cd/"))
    assert len(after) == 3  # the intact, the overwriting and the restored version: nothing rewritten
    assert history.load_version("data/cd/cdef", old["data/cd/cdef"].version_id) == good
