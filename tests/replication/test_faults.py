"""Faults during replication, with the real CLI against real servers.

After a SIGKILL or a dead S3 server the next run completes without re-sending what had
finished and the target verifies; bad credentials, unknown host keys and unreachable
endpoints are one clear line, a non-zero exit and no state that breaks the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup.manifest import MANIFEST_KEY
from dc.state import open_state
from replication.ledger import Ledger
from replication.verify import verify_repository
from storage.backend import Backend
from storage.local import LocalBackend
from storage.url import open_backend
from tests.replication import primary
from tests.replication.test_cli import ok, one_line_error
from tests.servers.storage import s3_url, sftp_url


@pytest.fixture
def big_primary(tmp_path: Path) -> LocalBackend:
    """~40 packs of 256 KiB: enough objects to be killed in the middle of."""
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    primary.backup(source, primary.write_tree(tmp_path / "data", files=40, size=250_000))
    return source


def copyable(source: Backend) -> dict[str, int]:
    return {i.key: i.size for i in source.list("") if not i.key.startswith(("tombstones/", "locks/"))}


def target_env(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    if kind == "s3":
        ceph = request.getfixturevalue("ceph")
        request.getfixturevalue("s3_env")
        return s3_url(ceph), ceph.env()
    server = request.getfixturevalue("sshd_server")
    request.getfixturevalue("sftp_env")
    env = {"BCPCTL_KNOWN_HOSTS": str(server.known_hosts), "BCPCTL_SSH_KEY": str(server.client_key)}
    return sftp_url(server, tmp_path / "offsite"), env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "failpoint"),
    [
        pytest.param("s3", "replicate.after-object-7", marks=pytest.mark.s3, id="s3-between-objects"),
        pytest.param("sftp", "replicate.after-object-7", marks=pytest.mark.sshd, id="sftp-between-objects"),
        pytest.param("sftp", "storage.save.mid-object", marks=pytest.mark.sshd, id="sftp-mid-object"),
        pytest.param("sftp", "replicate.before-manifest", marks=pytest.mark.sshd, id="sftp-before-manifest"),
    ],
)
def test_sigkill_mid_sync_then_the_next_run_completes_without_resending(
    big_primary: LocalBackend, cli, request, tmp_path: Path, kind: str, failpoint: str
) -> None:  # type: ignore[no-untyped-def]
    url, env = target_env(kind, request, tmp_path)
    killed = cli(
        "replicate",
        "--from",
        str(big_primary.root),
        "--to",
        url,
        "--jobs",
        "2",
        env={**env, "BCPCTL_FAILPOINTS": failpoint},
    )
    assert killed.returncode == -9, killed.stderr
    target = open_backend(url)
    request.addfinalizer(target.close)
    finished = {i.key: i.size for i in target.list("")}
    everything = copyable(big_primary)
    assert MANIFEST_KEY not in finished
    assert all(everything[k] == size for k, size in finished.items())  # no partial object is visible
    if failpoint == "storage.save.mid-object":
        # killed inside the very first write: a temporary file is left, and nothing is visible
        assert finished == {}
        assert [p.name for p in (tmp_path / "offsite").rglob(".*.tmp-*")]
    else:
        # the interrupted target is a consistent state: every object intact, nothing unsigned committed
        assert verify_repository(target).ok

    resumed = ok(cli("replicate", "--from", str(big_primary.root), "--to", url, "--json", env=env))["runs"][0]
    remaining = {k: s for k, s in everything.items() if k not in finished and k != MANIFEST_KEY}
    assert resumed["objects_copied"] == len(remaining)
    assert resumed["bytes_sent"] == sum(remaining.values()) + everything[MANIFEST_KEY]
    pin = Ledger(open_state()).pin(resumed["repository"])
    assert pin is not None
    report = verify_repository(target, pinned_key=pin.public_key, min_sequence=pin.sequence)
    assert report.ok and report.snapshots_signed == 1


@pytest.mark.s3
@pytest.mark.slow
def test_s3_server_stopped_mid_transfer_then_the_next_run_completes(big_primary: LocalBackend, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    url = s3_url(ceph)
    env = {**os.environ, **ceph.env(), "BCPCTL_RETRY_SECONDS": "2"}
    # 10 MB at 2 MB/s: the gateway dies a couple of seconds into a five-second transfer
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bcpctl.cli",
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            "--limit-rate",
            "2M",
            "--jobs",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    target = open_backend(url)
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in target.list("data/")) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        ceph.stop_rgw()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        ceph.start_rgw()
    assert proc.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and ("incomplete" in lines[0] or "cannot reach" in lines[0]), stderr
    finished = {i.key for i in target.list("")}
    everything = copyable(big_primary)
    assert 3 <= len(finished) < len(everything)

    done = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "replicate", "--from", str(big_primary.root), "--to", url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    resumed = json.loads(done.stdout)["runs"][0]
    assert done.returncode == 0, done.stderr
    remaining = set(everything) - finished - {MANIFEST_KEY}
    assert resumed["objects_copied"] == len(remaining)
    assert resumed["bytes_sent"] == sum(everything[k] for k in remaining) + everything[MANIFEST_KEY]
    assert verify_repository(target).ok


@pytest.mark.s3
def test_wrong_s3_credentials_exit_3_and_leave_nothing_behind(big_primary: LocalBackend, cli, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    url = s3_url(ceph)
    wrong_secret = {**ceph.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    line = one_line_error(cli("replicate", "--from", str(big_primary.root), "--to", url, env=wrong_secret), 3)
    assert "rejected the credentials" in line and "not-the-secret" not in line
    unknown_key = {**ceph.env(), "AWS_ACCESS_KEY_ID": "NOSUCHKEY"}
    assert "rejected the credentials" in one_line_error(
        cli("replicate", "--from", str(big_primary.root), "--to", url, env=unknown_key), 3
    )
    no_creds = {k: "" for k in ceph.env()}
    assert "no S3 credentials" in one_line_error(
        cli(
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            env={**no_creds, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"},
        ),
        3,
    )
    assert list(open_backend(url).list("")) == []
    ok(cli("replicate", "--from", str(big_primary.root), "--to", url, env=ceph.env()))


@pytest.mark.sshd
def test_unknown_or_changed_sftp_host_key_exit_3(big_primary: LocalBackend, cli, sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = sftp_url(sshd_server, tmp_path / "offsite")
    key = str(sshd_server.client_key)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    line = one_line_error(
        cli(
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            "--known-hosts",
            str(empty),
            env={"BCPCTL_SSH_KEY": key},
        ),
        3,
    )
    assert "unknown host key" in line
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    changed = tmp_path / "changed_known_hosts"
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    changed.write_text(f"[{sshd_server.address}]:{sshd_server.port} {kind} {blob}\n")
    line = one_line_error(
        cli(
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            env={"BCPCTL_SSH_KEY": key, "BCPCTL_KNOWN_HOSTS": str(changed)},
        ),
        3,
    )
    assert "does not match" in line
    line = one_line_error(
        cli(
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            env={"BCPCTL_SSH_KEY": str(impostor), "BCPCTL_KNOWN_HOSTS": str(sshd_server.known_hosts)},
        ),
        3,
    )
    assert "rejected the SSH key" in line
    assert not (tmp_path / "offsite").exists()
    ok(
        cli(
            "replicate",
            "--from",
            str(big_primary.root),
            "--to",
            url,
            env={"BCPCTL_SSH_KEY": key, "BCPCTL_KNOWN_HOSTS": str(sshd_server.known_hosts)},
        )
    )


def test_unreachable_endpoints_are_one_clear_line(big_primary: LocalBackend, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.servers.ports import free_port

    port = free_port()  # nothing listens there
    known = tmp_path / "known_hosts"
    known.write_text(
        f"[127.0.0.1]:{port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "BCPCTL_KNOWN_HOSTS": str(known)}
    s3 = f"s3://bucket/p?endpoint=http://127.0.0.1:{port}&region=default"
    line = one_line_error(cli("replicate", "--from", str(big_primary.root), "--to", s3, env=env), 1)
    assert "cannot reach S3 endpoint" in line
    sftp = f"sftp://bcp@127.0.0.1:{port}/srv/repo"
    line = one_line_error(cli("replicate", "--from", str(big_primary.root), "--to", sftp, env=env), 1)
    assert "cannot reach SFTP server" in line
