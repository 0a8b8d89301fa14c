"""A signer's memo of its last manifest: skips re-verifying its own bytes, never changes what is signed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup import manifest as manifest_module
from backup.keyring import KeyRing
from backup.keyslots import add_slot
from backup.manifest import MANIFEST_KEY, Manifest, sign_manifest
from backup.manifestchain import Link
from backup.manifestmemo import ManifestMemo
from backup.opening import init_repository, open_repository
from backup.snapshot import Snapshot, save_snapshot
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

START = datetime(2026, 12, 1, tzinfo=UTC)
ACTIONS = ("own", "other", "slot", "plant", "forget", "tamper", "replay")


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every full verification a signature makes of the stored manifest (the real one runs)."""
    calls: list[int] = []
    real = manifest_module.verify_signed

    def counted(raw: bytes, **kwargs: object) -> object:
        calls.append(1)
        return real(raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(manifest_module, "verify_signed", counted)
    return calls


def _snapshot(repo_dir: Path, when: datetime, *, sign: bool) -> str:
    with open_repository(LocalBackend(repo_dir), PASSWORD, sign_on_close=sign) as repo:
        snap = Snapshot(when, "h", "u", "path", "/x", ("0" * 64,), system=f"s{when.hour % 3}")
        return save_snapshot(repo, snap).id


def test_a_ring_does_not_verify_again_the_manifest_it_signed(repo_dir: Path, verifications: list[int]) -> None:
    ring = KeyRing(sign_every=0)

    def own(hour: int) -> None:
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            save_snapshot(repo, Snapshot(START + timedelta(hours=hour), "h", "u", "path", "/x", ("0" * 64,)))

    own(0)  # unlocking reads the signed slots, the signature verifies init's manifest
    first = len(verifications)
    own(1)
    own(2)
    assert len(verifications) == first  # both found the bytes this ring signed
    _snapshot(repo_dir, START + timedelta(hours=5), sign=True)  # another process signs in between
    before = len(verifications)
    own(6)
    assert len(verifications) == before + 1  # not ours: verified in full
    own(7)
    assert len(verifications) == before + 1
    ring.close()


def test_a_slot_another_key_holder_signed_stays_signed_through_the_memo(repo_dir: Path) -> None:
    memo: ManifestMemo[Manifest | Link] = ManifestMemo()
    with open_repository(LocalBackend(repo_dir), PASSWORD, sign_on_close=False) as repo:
        first = sign_manifest(repo, memo=memo)
    with open_repository(LocalBackend(repo_dir), PASSWORD) as other:
        added = add_slot(other, b"a second operator's passphrase", kind="passphrase")
    with open_repository(LocalBackend(repo_dir), PASSWORD, sign_on_close=False) as repo:
        again = sign_manifest(repo, memo=memo)
    assert f"keys/{added}" not in first.keys
    assert f"keys/{added}" in again.keys  # a stale memo would have dropped it as planted


@settings(max_examples=12, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6))
def test_the_memo_never_changes_the_signed_body(tmp_path_factory: pytest.TempPathFactory, actions: list[str]) -> None:
    """Whatever other signers, planters and tamperers did in between, a signature with the memo
    stores the very body a signature without it would store from the same state at the same time."""
    root = tmp_path_factory.mktemp("memo")
    repo_dir = root / "repo"
    init_repository(LocalBackend(repo_dir, create=True), PASSWORD, kdf=FAST_KDF)
    memo: ManifestMemo[Manifest | Link] = ManifestMemo()
    old: list[bytes] = []
    for step, action in enumerate(actions):
        now = START + timedelta(hours=step + 1)
        backend = LocalBackend(repo_dir)
        if action in ("own", "other"):
            _snapshot(repo_dir, now, sign=action == "other")
        elif action in ("slot", "plant"):  # a planted slot is one nobody signs
            with open_repository(backend, PASSWORD, sign_on_close=action == "slot") as other:
                add_slot(other, f"passphrase {step}".encode(), kind="passphrase")
        elif action == "forget":
            doomed = sorted(i.key.removeprefix("snapshots/") for i in backend.list("snapshots/"))[:1]
            with open_repository(backend, PASSWORD, sign_on_close=False) as other:
                sign_manifest(other, now=now, without=frozenset(doomed))
            for snapshot_id in doomed:
                backend.remove(f"snapshots/{snapshot_id}")
        elif action == "tamper":
            backend.save(MANIFEST_KEY, backend.load(MANIFEST_KEY).replace(b'"sequence"', b'"sequencf"'))
        elif action == "replay" and old:
            backend.save(MANIFEST_KEY, old[0])
        shutil.rmtree(root / "copy", ignore_errors=True)
        shutil.copytree(repo_dir, root / "copy")
        with open_repository(LocalBackend(root / "copy"), PASSWORD, sign_on_close=False) as plain:
            expected = sign_manifest(plain, now=now)
        with open_repository(backend, PASSWORD, sign_on_close=False) as repo:
            signed = sign_manifest(repo, now=now, memo=memo)
        assert signed.body() == expected.body(), action
        old.append(backend.load(MANIFEST_KEY))
