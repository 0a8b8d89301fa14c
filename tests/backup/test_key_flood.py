"""Planted key slots never lock out a genuine one, whatever order the attacker gives them.

The class behind hostile finding 2: whoever can write ``keys/`` chooses names, modification
times and how many well-formed bogus slots there are, and may replace the manifest too. The
genuine passphrase and the escrow shares must still open the repository — on a machine that
unlocked it before (it remembers the manifest key and the slot that opened), and on a fresh one
when the manifest is genuine or the site pins its key — and a key holder can then clear every
planted slot in one command, while the next signature never adopts them.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.check import check_repository
from backup.crypto import MasterKey
from backup.escrow import ESCROW_KIND, open_repository_with_shares, split_key, write_share_sheets
from backup.keys import config_digest, wrap
from backup.keyslots import remove_unsigned, slot_rows
from backup.manifest import (
    MANIFEST_KEY,
    Manifest,
    encode_signed,
    index_set_digest,
    public_key_hex,
    read_manifest,
    repository_public_key,
)
from backup.opening import open_repository
from backup.repository import read_config
from backup.slotorder import MAX_UNWRAP_TRIES
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli

FLOOD = MAX_UNWRAP_TRIES + 1


def _plant(repo_dir: Path, kind: str, *, first_names: bool) -> list[str]:
    """``FLOOD`` well-formed slots wrapping another key, dated 1970, optionally named to sort first."""
    config, raw = read_config(LocalBackend(repo_dir))
    master = MasterKey.generate()
    planted = []
    for number in range(FLOOD):
        slot_id, data = wrap(master, b"x", repo_id=config.id, config_digest=config_digest(raw), kind=kind, kdf=FAST_KDF)
        name = f"{number:016x}" if first_names else slot_id
        data = data.replace(slot_id.encode(), name.encode())
        (repo_dir / "keys" / name).write_bytes(data)
        os.utime(repo_dir / "keys" / name, (0, 0))
        planted.append(name)
    return planted


def _forge_manifest(repo_dir: Path, planted: list[str]) -> None:
    """A manifest signed with the attacker's own key, naming only the planted slots."""
    backend = LocalBackend(repo_dir)
    config, raw = read_config(backend)
    key = Ed25519PrivateKey.generate()
    keys = {f"keys/{n}": hashlib.sha256((repo_dir / "keys" / n).read_bytes()).hexdigest() for n in planted}
    forged = Manifest(
        repository=config.id, sequence=2**62, time=datetime.now(UTC).isoformat(timespec="seconds"),
        public_key=public_key_hex(key), config_sha256=hashlib.sha256(raw).hexdigest(), keys=keys, snapshots=(),
        indexes=(), index_set_sha256=index_set_digest(()), packs={},
    )  # fmt: skip
    backend.save(MANIFEST_KEY, encode_signed(forged, key))


@pytest.fixture
def escrow_files(repo_dir: Path, tmp_path: Path) -> list[str]:
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        split = split_key(repo, shares=3, threshold=2)
    (tmp_path / "shares").mkdir()
    return write_share_sheets(split, tmp_path / "shares", str(repo_dir))[:2]


def _open(repo_dir: Path, kind: str, escrow: list[str], manifest_key: str | None = None):  # type: ignore[no-untyped-def]
    if kind == ESCROW_KIND:
        return open_repository_with_shares(LocalBackend(repo_dir), escrow, manifest_key=manifest_key)
    return open_repository(LocalBackend(repo_dir), PASSWORD, manifest_key=manifest_key)


@pytest.mark.parametrize("kind", ["passphrase", ESCROW_KIND])
@pytest.mark.parametrize("first_names", [False, True], ids=["random-names", "names-sorting-first"])
@pytest.mark.parametrize(
    ("manifest", "machine"),
    [
        ("genuine", "fresh"),
        ("genuine", "known"),
        ("forged", "known"),
        ("deleted", "known"),
        ("forged", "fresh-with-configured-pin"),
    ],
)
def test_planted_slots_never_lock_out_a_genuine_one(  # type: ignore[no-untyped-def]
    repo_dir: Path, tmp_path: Path, escrow_files, monkeypatch: pytest.MonkeyPatch,
    kind: str, first_names: bool, manifest: str, machine: str,
) -> None:  # fmt: skip
    with _open(repo_dir, kind, escrow_files) as repo:  # a machine that unlocked it before remembers
        pin = repository_public_key(repo)
    planted = _plant(repo_dir, kind, first_names=first_names)
    if manifest == "forged":
        _forge_manifest(repo_dir, planted)
    elif manifest == "deleted":
        (repo_dir / MANIFEST_KEY).unlink()
    if machine != "known":
        monkeypatch.setenv("BCPCTL_CACHE_DIR", str(tmp_path / "fresh-cache"))
    configured = pin if machine == "fresh-with-configured-pin" else None
    with _open(repo_dir, kind, escrow_files, configured) as repo:
        assert repo.slot_id not in planted


def test_a_key_holder_clears_every_planted_slot_and_the_next_signature_never_adopts_them(repo_dir: Path) -> None:
    planted = _plant(repo_dir, "passphrase", first_names=True)
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        rows = {row.id: row for row in slot_rows(repo)}
        assert [rows[name].signed for name in planted] == [False] * FLOOD and rows[repo.slot_id].signed
        report = check_repository(repo)
        unsigned = {note.object for note in report.notes if "not in the signed manifest" in note.message}
        assert unsigned == {f"keys/{name}" for name in planted}
        repo.state_changed = True  # any backup, forget or prune signs on close
    signed = read_manifest(LocalBackend(repo_dir), public_key=None, repo_id=None)
    assert signed is not None and not set(signed.keys) & {f"keys/{name}" for name in planted}
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        genuine = repo.slot_id
        assert sorted(remove_unsigned(repo)) == sorted(planted)
    assert sorted(p.name for p in (repo_dir / "keys").iterdir()) == [genuine]


def test_key_list_marks_unsigned_slots_and_key_remove_unsigned_clears_them(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    planted = _plant(repo, "passphrase", first_names=True)
    listed = cli("key", "list", "--repo", str(repo), "--json")
    assert listed.returncode == 0, listed.stderr
    signed = {row["id"]: row["signed"] for row in json.loads(listed.stdout)}
    assert sorted(name for name, ok in signed.items() if not ok) == sorted(planted) and sum(signed.values()) == 1
    both = cli("key", "remove", "0000000000000000", "--unsigned", "--repo", str(repo))
    assert both.returncode == 2 and "--unsigned" in both.stderr
    removed = cli("key", "remove", "--unsigned", "--repo", str(repo), "--json")
    assert removed.returncode == 0 and sorted(json.loads(removed.stdout)["removed"]) == sorted(planted)
    assert len(list((repo / "keys").iterdir())) == 1
