"""A missing repository is exit 2 whatever the URL form and whatever the command; anticipated OS
conditions (no permission, a full or read-only disk, an unsupported control database) are one
line, never "internal error"."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from backup.opening import init_repository
from bcpctl.reference import _walk
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli
from tests.servers.ceph import CephServer
from tests.servers.sshd import SshServer
from tests.servers.storage import s3_url, sftp_url

#: what each command needs besides --repo to get as far as opening it
_EXTRA: dict[str, list[str]] = {
    "restore": ["latest", "--target", "{tmp}/out"],
    "key remove": ["0000"],
    "key escrow split": ["--shares", "3", "--threshold", "2", "--out", "{tmp}/shares"],
    "key escrow open": ["--escrow", "{tmp}/share-1", "--escrow", "{tmp}/share-2"],
    "backup run": ["--source", "path:{tmp}"],
    "replicate": ["--to", "{tmp}/offsite"],
}
#: commands that create what --repo names instead of opening it
_CREATES = {"repo init"}


def _repo_commands() -> list[tuple[str, click.Command]]:
    from bcpctl.cli import _register, cli

    _register()
    found = []
    for path, command in _walk(cli, []):
        if isinstance(command, click.Group):
            continue
        names = {p.name for p in command.params}
        if names & {"repo_url", "source_url"} and " ".join(path) not in _CREATES:
            found.append((" ".join(path), command))
    return found


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: "), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    return lines[0]


def _args(name: str, command: click.Command, url: str, tmp: Path) -> list[str]:
    option = "--repo" if any(p.name == "repo_url" for p in command.params) else "--from"
    extra = [a.replace("{tmp}", str(tmp)) for a in _EXTRA.get(name, [])]
    return [*name.split(), option, url, *extra]


@pytest.mark.parametrize("form", ["plain", "file-url", "a-file", "under-a-file", "empty-dir"])
def test_a_missing_local_repository_is_exit_2_for_every_command(cli: Cli, tmp_path: Path, form: str) -> None:
    (tmp_path / "a-file").write_text("not a repository")
    (tmp_path / "empty").mkdir()
    url = {
        "plain": str(tmp_path / "missing"),
        "file-url": f"file://{tmp_path / 'missing'}",
        "a-file": str(tmp_path / "a-file"),
        "under-a-file": f"file://{tmp_path / 'a-file' / 'repo'}",
        "empty-dir": str(tmp_path / "empty"),
    }[form]
    commands = _repo_commands()
    assert {"snapshots", "check", "forget", "prune", "unlock", "restore", "key list"} <= {n for n, _ in commands}
    for name, command in commands:
        done = cli(*_args(name, command, url, tmp_path))
        assert done.returncode == 2, (name, done.stderr)
        _one_line_error(done)


@pytest.mark.s3
def test_a_missing_s3_bucket_or_prefix_is_exit_2(cli: Cli, ceph: CephServer, s3_env: dict[str, str]) -> None:
    for url in (ceph.url("no-such-bucket-here", "repo"), s3_url(ceph)):
        for args in (["snapshots", "--repo", url], ["unlock", "--repo", url], ["check", "--repo", url]):
            done = cli(*args, env=s3_env)
            assert done.returncode == 2, (url, args, done.stderr)
            _one_line_error(done)


@pytest.mark.sshd
def test_a_missing_sftp_path_is_exit_2(
    cli: Cli,
    tmp_path: Path,
    sshd_server: SshServer,
    sftp_env: dict[str, str],
) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "missing", tmp_path / "a-file", tmp_path / "empty"):
        url = sftp_url(sshd_server, path)
        for args in (["snapshots", "--repo", url], ["unlock", "--repo", url]):
            done = cli(*args, env=sftp_env)
            assert done.returncode == 2, (path, args, done.stderr)
            _one_line_error(done)


@pytest.mark.parametrize("url", ["mysql://bcp@127.0.0.1/control", "oracle://x", "not a url", "sqlite:relative.db"])
def test_an_unsupported_control_database_is_a_config_error(cli: Cli, tmp_path: Path, url: str) -> None:
    from bcpctl.demo import demo_config
    from bcpctl.demo.consortium import write_config

    raw = demo_config(tmp_path)
    for site in raw["sites"].values():
        site.pop("control_db")  # the demo gives each site its own
    raw["control_db"] = url
    config = tmp_path / "bcpctl.yaml"
    write_config(config, raw)
    done = cli("export", "list", "--config", str(config))
    assert done.returncode == 2, done.stderr
    line = _one_line_error(done)
    assert "control_db" in line and "sqlite" in line and "postgresql" in line
    from_env = cli("drill", "list", env={"BCPCTL_CONTROL_DB": url})
    assert from_env.returncode == 2 and "BCPCTL_CONTROL_DB" in _one_line_error(from_env)


# -- anticipated OS conditions ---------------------------------------------------------------


def _as_nobody() -> list[str]:
    runuser = shutil.which("setpriv")
    if os.geteuid() != 0 or runuser is None:
        pytest.fail("these tests drop to an unprivileged user with setpriv; run them as root")
    return [runuser, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def _cli_as_nobody(cli: Cli, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(cli.env) | (env or {})
    full.pop("PYTHONDONTWRITEBYTECODE", None)
    full["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [*_as_nobody(), sys.executable, "-m", "bcpctl.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def _world_readable_path(path: Path) -> None:
    """Let the unprivileged user reach ``path``'s parents (pytest's tmp dirs are 0700)."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)


def test_permission_denied_on_the_repository_is_one_line(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    _world_readable_path(repo)
    cache = tmp_path / "nobody-cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    env = {"BCPCTL_CACHE_DIR": str(cache), "HOME": str(cache)}
    repo.chmod(0o700)
    locked = _cli_as_nobody(cli, "snapshots", "--repo", str(repo), env=env)
    assert locked.returncode == 2, locked.stderr
    assert "permission denied" in _one_line_error(locked)

    repo.chmod(0o755)  # the directory opens, its objects (0600) do not
    objects = _cli_as_nobody(cli, "snapshots", "--repo", str(repo), env=env)
    assert objects.returncode == 2, objects.stderr
    assert "permission denied" in _one_line_error(objects).lower()


def test_an_unwritable_cache_directory_is_one_line(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    cache = tmp_path / "cache-file"
    cache.write_text("a file where the cache directory should be")
    done = cli("snapshots", "--repo", str(repo), env={"BCPCTL_CACHE_DIR": str(cache / "sub")})
    assert done.returncode == 2, done.stderr
    assert "cache" in _one_line_error(done)


def test_a_full_cache_disk_is_one_line(cli: Cli, tmp_path: Path) -> None:
    """ENOSPC where the index cache lives: a tiny tmpfs is a real full disk."""
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(400):
        (src / f"f{i:04d}.txt").write_bytes(os.urandom(64) * 4)
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}").returncode == 0
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        done = cli("check", "--repo", str(repo), env={"BCPCTL_CACHE_DIR": str(mount)})
        assert done.returncode == 1, done.stderr
        assert re.search("no space left|disk is full", _one_line_error(done).lower())
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_repository_is_one_line(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    subprocess.run(["mount", "--bind", str(repo), str(repo)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(repo)], check=True)
        done = cli("prune", "--repo", str(repo))
        assert done.returncode == 2, done.stderr
        assert "read-only" in _one_line_error(done).lower()
    finally:
        subprocess.run(["umount", str(repo)], check=True)
