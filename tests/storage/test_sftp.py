"""What only the SFTP backend does: big objects through the pipeline, reconnecting, leftovers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.backend import Backend
from storage.url import open_backend
from tests.servers.sshd import SshServer
from tests.servers.storage import sftp_url

pytestmark = pytest.mark.sshd


@pytest.fixture
def backend(sshd_server: SshServer, sftp_env: dict[str, str], tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(sftp_url(sshd_server, tmp_path / "r"), create=True)
    try:
        yield opened
    finally:
        opened.close()


def test_large_objects_round_trip_through_pipelined_writes_and_prefetched_reads(
    backend: Backend, tmp_path: Path
) -> None:
    data = os.urandom(20 * 1024 * 1024 + 17)
    backend.save("data/ab/big", data)
    assert backend.load("data/ab/big") == data
    assert backend.load("data/ab/big", len(data) - 5000, 5000) == data[-5000:]
    assert (tmp_path / "r" / "data" / "ab" / "big").read_bytes() == data


def test_a_dropped_connection_is_replaced_and_the_operation_retried(backend) -> None:  # type: ignore[no-untyped-def]
    backend.save("config", b"x")
    for conn in list(backend.inner._all):
        conn.client.get_transport().close()  # the network drops every idle connection
    assert backend.load("config") == b"x"
    assert backend.retries >= 1


def test_leftover_temporary_files_are_invisible(backend: Backend, tmp_path: Path) -> None:
    backend.save("index/a", b"x")
    (tmp_path / "r" / "index" / ".b.tmp-0123").write_bytes(b"half")
    assert [i.key for i in backend.list("")] == ["index/a"]


def test_a_missing_repository_directory_is_a_clear_error(
    sshd_server: SshServer, sftp_env: dict[str, str], tmp_path: Path
) -> None:
    from storage.errors import LocationMissing

    before = set(threading.enumerate())
    with pytest.raises(LocationMissing, match="does not exist") as refused:  # as for a local path
        open_backend(sftp_url(sshd_server, tmp_path / "nowhere"))
    assert refused.value.exit_code == 2
    with pytest.raises(LocationMissing, match="does not exist"):
        open_backend(str(tmp_path / "nowhere"))
    # the refused connection is closed, not leaked: its transport thread ends
    deadline = time.monotonic() + 5
    while (started := [t for t in threading.enumerate() if t not in before]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not started
