"""The key ring of a long-running process: one key derivation per repository, never a wrong passphrase's."""

from __future__ import annotations

import os
import resource
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backup import keys
from backup.errors import CorruptObject, WrongPassword
from backup.keyring import KeyRing, LockedBuffer
from backup.opening import open_repository
from storage.local import LocalBackend
from tests.backup.conftest import counting_link_reads
from tests.conftest import PASSWORD


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every Argon2id derivation (the real one still runs)."""
    calls: list[int] = []
    real = keys._kek

    def counted(secret: bytes, salt: bytes, kdf: dict[str, int]) -> bytes:
        calls.append(1)
        return real(secret, salt, kdf)

    monkeypatch.setattr(keys, "_kek", counted)
    return calls


def test_concurrent_opens_through_a_ring_derive_the_key_once(repo_dir: Path, derivations: list[int]) -> None:
    ring = KeyRing()

    def one(_: int) -> str:
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            return repo.master.chunk_id.hex()

    with ThreadPoolExecutor(4) as pool:
        seen = set(pool.map(one, range(40)))
    assert len(seen) == 1
    assert len(derivations) == 1
    ring.close()
    assert len(ring) == 0


def test_without_a_ring_every_open_derives(repo_dir: Path, derivations: list[int]) -> None:
    for _ in range(3):
        with open_repository(LocalBackend(repo_dir), PASSWORD):
            pass
    assert len(derivations) == 3


@pytest.mark.parametrize("wrong", ["", "x", PASSWORD + " ", PASSWORD.upper()])
def test_a_held_key_is_never_handed_to_another_passphrase(repo_dir: Path, wrong: str) -> None:
    ring = KeyRing()
    with ring.open(LocalBackend(repo_dir), PASSWORD):
        pass
    with pytest.raises(WrongPassword), ring.open(LocalBackend(repo_dir), wrong):
        pass


def test_a_changed_config_unlocks_afresh(repo_dir: Path, derivations: list[int]) -> None:
    """A slot binds the config's SHA-256: a held key must not outlive a replaced config."""
    ring = KeyRing()
    with ring.open(LocalBackend(repo_dir), PASSWORD):
        pass
    config = repo_dir / "config"
    config.write_bytes(config.read_bytes() + b"\n")
    repo_open = ring.open(LocalBackend(repo_dir), PASSWORD)
    with pytest.raises(CorruptObject, match="modified"), repo_open:
        pass
    assert len(derivations) == 2


def test_closed_ring_wipes_and_refuses(repo_dir: Path) -> None:
    ring = KeyRing()
    with ring.open(LocalBackend(repo_dir), PASSWORD):
        pass
    held = next(iter(ring._held.values())).key
    ring.close()
    assert held.value() == bytes(held.size)
    with pytest.raises(RuntimeError), ring.open(LocalBackend(repo_dir), PASSWORD):
        pass


def test_locked_buffer_is_locked_where_the_limit_allows() -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    buffer = LockedBuffer(b"k" * 72)
    assert buffer.locked == (soft == resource.RLIM_INFINITY or soft >= 4096 or os.geteuid() == 0)
    assert buffer.value() == b"k" * 72
    buffer.wipe()
    assert buffer.value() == bytes(72) and not buffer.locked


def test_manifest_signing_is_batched_and_the_batch_signs_everything(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from backup import keyring as keyring_module
    from backup.manifest import read_manifest, repository_public_key
    from backup.snapshot import Snapshot, save_snapshot

    signs: list[int] = []
    real = keyring_module.sign_manifest
    monkeypatch.setattr(keyring_module, "sign_manifest", lambda repo, **kw: signs.append(1) or real(repo, **kw))
    ring = KeyRing(sign_every=3600)
    written = []
    for i in range(10):
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            snap = Snapshot(datetime(2026, 12, 1, i, tzinfo=UTC), "h", "u", "path", "/x", ("0" * 64,), system="s")
            written.append(save_snapshot(repo, snap).id)
    assert signs == []
    url = LocalBackend(repo_dir).url
    assert ring.unsigned() == set() and ring.unsigned(due_only=False) == {url}
    with ring.open(LocalBackend(repo_dir), PASSWORD, sign_now=True) as repo:
        key = repository_public_key(repo)
    assert signs == [1] and ring.unsigned(due_only=False) == set()
    manifest = read_manifest(LocalBackend(repo_dir), public_key=key, repo_id=repo.config.id)
    assert manifest is not None and set(written) <= {e.id for e in manifest.snapshots}
    eager = KeyRing(sign_every=0)  # no window: every change signed at its close, as the CLI does
    with eager.open(LocalBackend(repo_dir), PASSWORD) as repo:
        save_snapshot(repo, Snapshot(datetime(2026, 12, 2, tzinfo=UTC), "h", "u", "path", "/x", ("0" * 64,)))
    assert signs == [1, 1]


def test_a_batch_does_not_sign_back_a_snapshot_forgotten_while_it_waited(repo_dir: Path) -> None:
    """serve holds a committed snapshot unsigned; ``forget`` in another process signs it away and
    removes it; serve's next link must not name it, and looks no further back than its own last link."""
    from datetime import UTC, datetime

    from backup.forget import forget_snapshots
    from backup.manifest import read_manifest, repository_public_key
    from backup.retention import RetentionPolicy
    from backup.snapshot import Snapshot, save_snapshot, snapshot_ids

    ring = KeyRing(sign_every=3600)
    with ring.open(LocalBackend(repo_dir), PASSWORD, sign_now=True) as repo:
        save_snapshot(repo, Snapshot(datetime(2026, 12, 1, tzinfo=UTC), "h", "u", "path", "/x", ("0" * 64,)))
    written = []
    for hour in (1, 2):
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            assert repo.journal.seen is not None  # the link the ring signed last
            snap = Snapshot(datetime(2026, 12, 1, hour, tzinfo=UTC), "h", "u", "path", "/x", ("0" * 64,))
            written.append(save_snapshot(repo, snap).id)
    with open_repository(LocalBackend(repo_dir), PASSWORD) as other:
        decisions = forget_snapshots(other, RetentionPolicy(last=1), now=datetime(2026, 12, 1, 3, tzinfo=UTC))
    assert written[0] in {d.id for d in decisions if not d.keep}
    with ring.open(LocalBackend(repo_dir), PASSWORD, sign_now=True) as repo:
        key = repository_public_key(repo)
    manifest = read_manifest(LocalBackend(repo_dir), public_key=key, repo_id=repo.config.id)
    assert manifest is not None
    assert {e.id for e in manifest.snapshots} == {written[1]} == set(snapshot_ids(repo))


def test_a_rings_first_batch_reads_no_link_older_than_the_head_its_unlock_read(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's first jobs on a repository know where its chain was (the unlock read the head), so
    its first signature does not walk back to the checkpoint; later jobs take the newer position
    of the link the ring signed."""
    from datetime import UTC, datetime, timedelta

    from backup.forget import forget_snapshots
    from backup.manifest import read_manifest, repository_public_key, sign_manifest
    from backup.manifestchain import Link, link_key
    from backup.retention import RetentionPolicy
    from backup.snapshot import Snapshot, save_snapshot, snapshot_ids

    start = datetime(2026, 12, 1, tzinfo=UTC)

    def signed_elsewhere(count: int) -> int:
        with open_repository(LocalBackend(repo_dir), PASSWORD, sign_on_close=False) as other:
            for n in range(count):
                last = sign_manifest(other, now=start + timedelta(seconds=n))
        assert isinstance(last, Link)
        return last.position

    head = signed_elsewhere(20)
    ring = KeyRing(sign_every=3600)
    written = []
    for hour in (1, 2):
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            assert repo.journal.seen == head
            snap = Snapshot(start + timedelta(hours=hour), "h", "u", "path", "/x", ("0" * 64,), system="s")
            written.append(save_snapshot(repo, snap).id)
    with open_repository(LocalBackend(repo_dir), PASSWORD) as other:
        decisions = forget_snapshots(other, RetentionPolicy(last=1), now=start + timedelta(hours=3))
    assert written[0] in {d.id for d in decisions if not d.keep}
    after = signed_elsewhere(2)
    read = counting_link_reads(monkeypatch)
    with ring.open(LocalBackend(repo_dir), PASSWORD, sign_now=True) as repo:
        key = repository_public_key(repo)
    assert read == [link_key(after + 1)] + [link_key(p) for p in range(after - 1, head, -1)]
    manifest = read_manifest(LocalBackend(repo_dir), public_key=key, repo_id=repo.config.id)
    assert manifest is not None
    assert {e.id for e in manifest.snapshots} == {written[1]} == set(snapshot_ids(repo))
    with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
        assert repo.journal.seen == manifest.position == after + 1
