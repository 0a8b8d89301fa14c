"""What only the SFTP backend does: big objects through the pipeline, reconnecting, leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.url import open_backend
from tests.servers.storage import sftp_url

pytestmark = pytest.mark.sshd


def test_large_objects_round_trip_through_pipelined_writes_and_prefetched_reads(
    sshd_server, sftp_env, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(sftp_url(sshd_server, tmp_path / "r"), create=True)
    data = os.urandom(20 * 1024 * 1024 + 17)
    backend.save("data/ab/big", data)
    assert backend.load("data/ab/big") == data
    assert backend.load("data/ab/big", len(data) - 5000, 5000) == data[-5000:]
    assert (tmp_path / "r" / "data" / "ab" / "big").read_bytes() == data


def test_a_dropped_connection_is_replaced_and_the_operation_retried(sshd_server, sftp_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(sftp_url(sshd_server, tmp_path / "r"), create=True)
    backend.save("config", b"x")
    for conn in list(backend.inner._all):
        conn.client.get_transport().close()  # the network drops every idle connection
    assert backend.load("config") == b"x"
    assert backend.retries >= 1


def test_leftover_temporary_files_are_invisible(sshd_server, sftp_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(sftp_url(sshd_server, tmp_path / "r"), create=True)
    backend.save("index/a", b"x")
    (tmp_path / "r" / "index" / ".b.tmp-0123").write_bytes(b"half")
    assert [i.key for i in backend.list("")] == ["index/a"]


def test_a_missing_repository_directory_is_a_clear_error(sshd_server, sftp_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from storage.errors import LocationMissing

    with pytest.raises(LocationMissing, match="does not exist") as refused:  # as for a local path
        open_backend(sftp_url(sshd_server, tmp_path / "nowhere"))
    assert refused.value.exit_code == 2
    with pytest.raises(LocationMissing, match="does not exist"):
        open_backend(str(tmp_path / "nowhere"))
