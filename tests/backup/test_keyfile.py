"""Key files (backup/keyfile.py): a database host's 256-bit key, seen by its owner and by an attacker.

An attacker's view: a key file others can read, one that belongs to someone else, the wrong
key, a malformed or hostile file, and a slot in ``keys/`` tampered to look like a key-file
slot or to put a passphrase through HKDF. Each is refused with one line and its exit code,
and nothing stored changes.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup.errors import WrongPassword
from backup.keyfile import KeyFileExposed, add_key_file, open_with_key_file, read_key_file
from backup.opening import open_repository
from backup.slotformat import KEYFILE_KIND, KEYS_PREFIX
from backup.slotscan import scan_slots
from dc.errors import UsageError
from storage.local import LocalBackend
from tests.backup.test_wal import _archived, _names, _switch
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli


@pytest.fixture
def key_file(repo_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "host.key"
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        add_key_file(repo, path, label="db host")
    return path


def test_a_new_key_file_is_private_random_and_opens_the_repository(repo_dir: Path, key_file: Path) -> None:
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(read_key_file(key_file)) == 32
    with open_with_key_file(LocalBackend(repo_dir), key_file) as repo:
        with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as by_passphrase:
            assert repo.master.to_bytes() == by_passphrase.master.to_bytes()
    slots, problems = scan_slots(LocalBackend(repo_dir))
    assert [s.kind for s in slots] == ["passphrase", KEYFILE_KIND] and problems == []
    stored = (repo_dir / KEYS_PREFIX / slots[1].id).read_bytes()
    assert read_key_file(key_file).hex().encode() not in stored  # the slot wraps, never holds, the key


def test_a_key_file_is_never_created_over_an_existing_file(repo_dir: Path, key_file: Path) -> None:
    before = key_file.read_bytes()
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo, pytest.raises(UsageError):
        add_key_file(repo, key_file)
    assert key_file.read_bytes() == before
    assert len(scan_slots(LocalBackend(repo_dir))[0]) == 2  # no slot for a key nobody holds


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.integers(0o400, 0o7777))
def test_any_access_for_group_or_others_is_refused_before_the_key_is_used(key_file: Path, mode: int) -> None:
    secret = read_key_file(key_file).hex()
    os.chmod(key_file, mode)
    try:
        if mode & 0o077:
            with pytest.raises(KeyFileExposed) as refused:
                read_key_file(key_file)
            assert refused.value.exit_code == 3 and f"{mode & 0o7777:04o}" in refused.value.message
            assert secret not in refused.value.message
        else:
            assert read_key_file(key_file).hex() == secret
    finally:
        os.chmod(key_file, 0o600)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_file_owned_by_another_user_is_refused(key_file: Path) -> None:
    other = pwd.getpwnam("nobody")
    os.chown(key_file, other.pw_uid, other.pw_gid)
    with pytest.raises(KeyFileExposed) as refused:
        read_key_file(key_file)
    assert refused.value.exit_code == 3


@pytest.mark.parametrize(
    "content",
    [b"", b"# only a comment\n", b"zz" * 32 + b"\n", b"ab" * 31 + b"\n", b"ab" * 33 + b"\n", b"ab" * 32 + b"\nab\n",
     "\u00e9".encode() * 40, b"\xff" * 64, b"a" * 5000],
    ids=["empty", "comment", "not-hex", "short", "long", "two-keys", "utf8", "binary", "huge"],
)  # fmt: skip
def test_what_is_not_a_key_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(UsageError) as refused:
        read_key_file(path)
    assert refused.value.exit_code == 2 and "\n" not in refused.value.message


def test_a_fifo_or_a_directory_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    for path in (fifo, tmp_path):
        with pytest.raises(UsageError, match=r"not a regular file|Is a directory"):
            read_key_file(path)


def test_the_wrong_key_opens_nothing(repo_dir: Path, key_file: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex() + "\n")
    wrong.chmod(0o600)
    with pytest.raises(WrongPassword, match="wrong key file") as refused:
        with open_with_key_file(LocalBackend(repo_dir), wrong):
            pass
    assert refused.value.exit_code == 3


def test_a_passphrase_slot_is_never_opened_by_a_key_file_holding_its_bytes(repo_dir: Path, tmp_path: Path) -> None:
    """Only key-file slots are tried with a key file: its bytes never meet Argon2id slots (and
    a passphrase is never put through HKDF)."""
    secret = os.urandom(32)
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        from backup.keyslots import add_slot

        add_slot(repo, secret, kind="passphrase")
    path = tmp_path / "k"
    path.write_text(secret.hex())
    path.chmod(0o600)
    with pytest.raises(WrongPassword):
        with open_with_key_file(LocalBackend(repo_dir), path):
            pass


def _tamper(repo_dir: Path, slot_id: str, **changes: object) -> None:
    path = repo_dir / KEYS_PREFIX / slot_id
    doc = json.loads(path.read_bytes())
    for field, value in changes.items():
        if field.startswith("kdf_"):
            doc["kdf"][field[4:]] = value
        else:
            doc[field] = value
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("target", ["passphrase", KEYFILE_KIND])
def test_a_slot_whose_kind_and_derivation_disagree_is_damaged_not_tried(
    repo_dir: Path, key_file: Path, target: str
) -> None:
    """An attacker with write access to keys/ turning the passphrase slot into an HKDF one (cheap
    to guess against) or the key-file slot into an Argon2id one gets a damaged slot, not a new way in."""
    slots, _ = scan_slots(LocalBackend(repo_dir))
    slot = next(s for s in slots if s.kind == target)
    if target == "passphrase":
        _tamper(repo_dir, slot.id, kdf_name="hkdf-sha256")
    else:
        _tamper(repo_dir, slot.id, kdf_name="argon2id", kdf_memory_kib=8192, kdf_iterations=1, kdf_lanes=1)
    usable, problems = scan_slots(LocalBackend(repo_dir))
    assert slot.id not in {s.id for s in usable}
    assert any(p.name == slot.id and "only key-file slots derive with HKDF" in p.problem for p in problems)


def test_a_key_file_slot_relabelled_as_a_passphrase_slot_is_damaged(repo_dir: Path, key_file: Path) -> None:
    slots, _ = scan_slots(LocalBackend(repo_dir))
    slot = next(s for s in slots if s.kind == KEYFILE_KIND)
    _tamper(repo_dir, slot.id, kind="passphrase")
    with pytest.raises(WrongPassword):
        with open_with_key_file(LocalBackend(repo_dir), key_file):
            pass
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False):
        pass  # the other slots still open: one damaged object locks nobody out
    raw = (repo_dir / KEYS_PREFIX / slot.id).read_bytes()
    assert base64.b64decode(json.loads(raw)["wrapped"])  # still there: nothing stored was removed


# --- the database host: wal push / wal get through the CLI, with a real PostgreSQL ---------------


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env, key_file=True) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), v text)")
        yield made


@pytest.mark.postgres
def test_postgres_archives_and_fetches_with_the_key_file_alone(site: WalSite, tmp_path: Path) -> None:
    (site.base / "password").write_text("not the password")  # the passphrase is not what opens it
    name = _switch(site)
    _archived(site, name)
    assert name in _names(site)
    cli = Cli(site.relay.env)
    got = cli("wal", "get", name, str(tmp_path / "out"), "--system", SYSTEM)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out").read_bytes() == (site.cluster.datadir / "pg_wal" / name).read_bytes()


@pytest.mark.postgres
def test_an_exposed_or_wrong_key_file_stops_wal_commands_with_one_line(site: WalSite, tmp_path: Path) -> None:
    cli = Cli(site.relay.env)
    name = _switch(site)
    _archived(site, name)
    segment = site.cluster.datadir / "pg_wal" / name
    key = site.base / "key"
    key.chmod(0o644)
    for args in (["push", str(segment)], ["get", name, str(tmp_path / "out")]):
        got = cli("wal", *args, "--system", SYSTEM)
        assert got.returncode == 3, got.stderr
        assert got.stderr.count("\n") == 1 and got.stderr.startswith("bcpctl: error: key file")
        assert "0644" in got.stderr and read_key_file_text(key) not in got.stderr + got.stdout
    key.write_text(os.urandom(32).hex())
    key.chmod(0o600)
    for args in (["push", str(segment)], ["get", name, str(tmp_path / "out")]):
        got = cli("wal", *args, "--system", SYSTEM)
        assert got.returncode == 3 and "wrong key file" in got.stderr, got.stderr
    assert not (tmp_path / "out").exists()
    key.unlink()
    got = cli("wal", "push", str(segment), "--system", SYSTEM)
    assert got.returncode == 2 and "cannot read key file" in got.stderr


def read_key_file_text(path: Path) -> str:
    mode = path.stat().st_mode
    path.chmod(0o600)
    try:
        return read_key_file(path).hex()
    finally:
        path.chmod(mode)


def test_key_add_creates_a_key_file_from_the_cli(cli: Cli, repo_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    got = cli("key", "add", "--repo", str(repo_dir), "--new-key-file", str(path), "--json")
    assert got.returncode == 0, got.stderr
    slot = json.loads(got.stdout)["added"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path).hex() not in got.stdout + got.stderr
    assert {s.id: s.kind for s in scan_slots(LocalBackend(repo_dir))[0]}[slot] == KEYFILE_KIND
    again = cli("key", "add", "--repo", str(repo_dir), "--new-key-file", str(path))
    assert again.returncode == 2 and "cannot create key file" in again.stderr
