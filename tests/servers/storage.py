"""Real storage servers as fixtures: Ceph RGW (S3) and OpenSSH sshd (SFTP), for every test package.

A pytest plugin (``pytest_plugins`` in ``tests/conftest.py``), so the storage, replication and
CLI tests share one server of each kind per session and worker instead of starting their own.
Both start once per session on 127.0.0.1 and fail (never skip) the tests that need them when
they cannot start. Each test gets a fresh bucket prefix or directory, so tests never see
each other's objects.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.backend import Backend
from storage.capabilities import as_capability
from storage.s3 import S3Backend
from tests.servers.ceph import CephServer, start_ceph
from tests.servers.ceph import cleanup as ceph_cleanup
from tests.servers.sshd import SshServer, start_sshd
from tests.servers.sshd import cleanup as sshd_cleanup

BUCKET = "bcpctl-test"
LOCKED_BUCKET = "bcpctl-locked"
#: versioning without Object Lock: history exists, but nothing stops its deletion
VERSIONED_BUCKET = "bcpctl-versioned"


@pytest.fixture(scope="session")
def ceph() -> Iterator[CephServer]:
    server = start_ceph()
    try:
        server.create_bucket(BUCKET)
        server.create_bucket(LOCKED_BUCKET, object_lock=True)
        server.create_bucket(VERSIONED_BUCKET)
        server.client().put_bucket_versioning(Bucket=VERSIONED_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield server
    finally:
        ceph_cleanup(server)


@pytest.fixture(scope="session")
def sshd_server() -> Iterator[SshServer]:
    server = start_sshd()
    try:
        yield server
    finally:
        sshd_cleanup(server)


@pytest.fixture
def s3_env(ceph: CephServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials in the environment, as an operator would provide them (for this process and the CLI)."""
    for name, value in ceph.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return ceph.env()


@pytest.fixture
def sftp_env(sshd_server: SshServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"BCPCTL_KNOWN_HOSTS": str(sshd_server.known_hosts), "BCPCTL_SSH_KEY": str(sshd_server.client_key)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return env


def s3_url(ceph: CephServer, *, locked: bool = False, bucket: str | None = None) -> str:
    return ceph.url(bucket or (LOCKED_BUCKET if locked else BUCKET), f"t-{secrets.token_hex(6)}")


def sftp_url(server: SshServer, path: Path) -> str:
    return f"sftp://{server.user}@{server.address}:{server.port}{path}"


@pytest.fixture
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty storage location of the kind named by the test's ``kind`` parameter."""
    kind = request.param
    if kind == "local":
        return str(tmp_path / "repo")
    if kind in ("s3", "s3-locked", "s3-versioned"):
        request.getfixturevalue("s3_env")
        bucket = {"s3": BUCKET, "s3-locked": LOCKED_BUCKET, "s3-versioned": VERSIONED_BUCKET}[kind]
        return s3_url(request.getfixturevalue("ceph"), bucket=bucket)
    if kind == "sftp":
        request.getfixturevalue("sftp_env")
        return sftp_url(request.getfixturevalue("sshd_server"), tmp_path / "sftp-repo")
    raise ValueError(kind)


KINDS = [
    pytest.param("local", id="local"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
    pytest.param("sftp", id="sftp", marks=pytest.mark.sshd),
]
#: storage that keeps object versions (the ``Versioned`` capability)
VERSIONED_KINDS = [
    pytest.param("s3-locked", id="s3-locked", marks=pytest.mark.s3),
    pytest.param("s3-versioned", id="s3-versioned", marks=pytest.mark.s3),
]


def plant(backend: Backend, key: str, data: bytes) -> None:
    """Write ``data`` under ``key`` as anyone with the storage's credentials can, damage included.

    ``S3Backend.save`` refuses a content-addressed body that does not hash to its name; an
    attacker's client does not, so S3 gets a bare PUT.
    """
    s3 = as_capability(backend, S3Backend)
    if s3 is None:
        backend.save(key, data)
    else:
        s3._client.put_object(Bucket=s3.location.bucket, Key=s3.location.prefix + key, Body=data)
