"""Hostile tests of the forget/signer race fix (backup/chainsign.py ``_signed_away``).

Interleavings of ``forget`` (list, sign, delete, sign again) with signers' unlock/commit/sign,
a prune checkpoint and lost position claims, chosen by hypothesis; the invariant after
everything is signed: the signed state names only snapshots that exist, and every snapshot
committed and never forgotten.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup import chainsign
from backup.forget import forget_snapshots
from backup.keyring import KeyRing
from backup.manifest import read_manifest, repository_public_key, sign_manifest
from backup.manifestchain import Link
from backup.manifeststate import CHAIN_PREFIX
from backup.opening import init_repository, open_repository
from backup.repository import SNAPSHOT_PREFIX, Repository
from backup.retention import RetentionPolicy
from backup.snapshot import Snapshot, save_snapshot, snapshot_ids
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

START = datetime(2026, 12, 1, tzinfo=UTC)

Step = Generator[None, None, None]


class _Hooked(LocalBackend):
    """A backend whose next link claim first lets another actor run (a lost or won race)."""

    before_claim: Callable[[], None] | None = None

    def save_new(self, key: str, data: bytes) -> bool:
        hook, self.before_claim = self.before_claim, None
        if hook is not None and key.startswith(CHAIN_PREFIX):
            hook()
        return super().save_new(key, data)


class _World:
    def __init__(self, root: Path, session: contextlib.ExitStack) -> None:
        self.root = root
        self.session = session
        self.tick = 0
        self.committed: set[str] = set()
        self.candidates: set[str] = set()  # what forget may list
        self.forgotten: set[str] = set()

    def now(self) -> datetime:
        self.tick += 1
        return START + timedelta(minutes=self.tick)

    def open(self, backend: LocalBackend | None = None) -> Repository:
        return self.session.enter_context(
            open_repository(backend or LocalBackend(self.root), PASSWORD, sign_on_close=False)
        )

    def commit(self, repo: Repository, *, forgettable: bool) -> str:
        when = self.now()
        snapshot_id = save_snapshot(repo, Snapshot(when, "h", "u", "path", "/x", ("0" * 64,), system="s")).id
        self.committed.add(snapshot_id)
        if forgettable:
            self.candidates.add(snapshot_id)
        return snapshot_id


def _signer(world: _World, backend: _Hooked, pending: list[Repository]) -> Step:
    repo = world.open(backend)
    pending.append(repo)
    yield
    world.commit(repo, forgettable=True)
    yield
    sign_manifest(repo, now=world.now())
    yield
    world.commit(repo, forgettable=True)
    yield
    world.commit(repo, forgettable=False)
    yield
    sign_manifest(repo, now=world.now())


def _forget(world: _World) -> Step:
    repo = world.open()
    yield
    doomed = frozenset(set(snapshot_ids(repo)) & world.candidates)
    world.forgotten |= doomed
    yield
    sign_manifest(repo, without=doomed, now=world.now())
    yield
    for snapshot_id in sorted(doomed):
        repo.backend.remove(SNAPSHOT_PREFIX + snapshot_id)
    yield
    sign_manifest(repo, without=doomed, now=world.now())


def _prune(world: _World) -> Step:
    repo = world.open()
    yield
    sign_manifest(repo, checkpoint=True, now=world.now())


def _upgrade(world: _World) -> Step:
    repo = world.open()
    yield
    sign_manifest(repo, chain=True, checkpoint=True, now=world.now())


def _serve(world: _World, ring: KeyRing, backend: _Hooked) -> Step:
    """Two jobs through a key ring, signed together at a third's close (deferred signing)."""
    with ring.open(backend, PASSWORD) as job:
        world.commit(job, forgettable=True)
        yield
    yield
    with ring.open(backend, PASSWORD) as job:
        world.commit(job, forgettable=True)
        yield
        world.commit(job, forgettable=False)
    yield
    with ring.open(backend, PASSWORD, sign_now=True):
        pass


def _run(data: st.DataObject, every: int, fmt: int = 2) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.ExitStack() as session,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setattr(chainsign, "CHECKPOINT_EVERY", every)
        root = Path(tmp) / "repo"
        init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF, manifest_format=fmt)
        world = _World(root, session)
        with open_repository(LocalBackend(root), PASSWORD) as first:
            world.commit(first, forgettable=True)
            world.commit(first, forgettable=False)
        pending: list[Repository] = []
        ring = KeyRing(sign_every=3600)
        session.callback(ring.close)
        backends = [_Hooked(root), _Hooked(root)]
        serving = data.draw(st.booleans(), label="serve")
        actors: list[Step] = [
            _serve(world, ring, backends[0]) if serving else _signer(world, backends[0], pending),
            _signer(world, backends[1], pending),
            _forget(world),
        ]
        if data.draw(st.booleans(), label="prune"):
            actors.append(_prune(world))
        if data.draw(st.booleans(), label="second forget"):
            actors.append(_forget(world))
        if fmt == 1:
            actors.append(_upgrade(world))
        live = list(actors)

        def advance(actor: Step) -> None:
            try:
                next(actor)
            except StopIteration:
                live.remove(actor)

        while live:
            actor = data.draw(st.sampled_from(live), label="next")
            if actor in actors[:2] and data.draw(st.booleans(), label="interject"):
                others = [a for a in live if a is not actor]
                if others:
                    other = data.draw(st.sampled_from(others), label="interjected")
                    backends[actors.index(actor)].before_claim = lambda other=other: advance(other)
            advance(actor)
            for b in backends:
                b.before_claim = None
        for repo in pending:  # whatever is still unsigned is signed now
            if repo.journal.added:
                sign_manifest(repo, now=world.now())
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as check:
            signed = read_manifest(LocalBackend(root), public_key=repository_public_key(check), repo_id=check.config.id)
            present = set(snapshot_ids(check))
        assert signed is not None
        assert signed.snapshot_ids <= present, "signed but gone"
        kept = world.committed - world.forgotten
        assert kept <= present
        assert kept <= signed.snapshot_ids, "never forgotten, yet not signed"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), every=st.sampled_from([2, 3, 100]))
def test_every_interleaving_of_forget_with_two_signers_and_a_prune(data: st.DataObject, every: int) -> None:
    _run(data, every)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), every=st.sampled_from([2, 100]))
def test_every_interleaving_across_the_upgrade_from_format_1(data: st.DataObject, every: int) -> None:
    _run(data, every, fmt=1)


def _commit(repo: Repository, minutes: int) -> str:
    when = START + timedelta(minutes=minutes)
    return save_snapshot(repo, Snapshot(when, "h", "u", "path", "/x", ("0" * 64,), system="s")).id


def test_serve_after_its_storage_was_rolled_back_still_honours_a_removal_below_its_memo(tmp_path: Path) -> None:
    """The storage is put back to an older copy (a restore in place, or an attacker who can
    write it replaying old objects) while ``serve`` holds the key: the link serve signed last
    is no longer in the chain, and its position is no floor for the links that follow."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(root), PASSWORD) as first:
        _commit(first, 0)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    ring = KeyRing()
    try:
        for minute in range(1, 4):
            with ring.open(LocalBackend(root), PASSWORD, sign_now=True) as job:
                _commit(job, minute)
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as probe:
            memo_position = probe.journal.seen
        assert memo_position is not None
        shutil.rmtree(root)
        shutil.copytree(copy, root)  # rolled back: the links serve signed are gone
        with ring.open(LocalBackend(root), PASSWORD, sign_now=True) as job:
            older, newer = _commit(job, 10), _commit(job, 11)
            with open_repository(LocalBackend(root), PASSWORD) as other:
                doomed = forget_snapshots(other, RetentionPolicy(last=1), now=START + timedelta(minutes=12))
            assert older in {d.id for d in doomed if not d.keep}
            with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as other:
                while True:
                    head = sign_manifest(other, now=START + timedelta(minutes=13))
                    assert isinstance(head, Link)
                    if head.position >= memo_position:
                        break
        # the job's close signed its journal
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as check:
            signed = read_manifest(LocalBackend(root), public_key=repository_public_key(check), repo_id=check.config.id)
            present = set(snapshot_ids(check))
        assert signed is not None
        assert newer in signed.snapshot_ids
        assert signed.snapshot_ids <= present, "a forgotten snapshot signed back in"
    finally:
        ring.close()


def test_a_process_whose_own_last_link_was_rolled_away_finds_the_removal_signed_at_its_position(
    tmp_path: Path,
) -> None:
    """A long-running process signed links up to k; the storage is then put back to before them,
    forget's removal is signed at k - 2 (and k - 1), other links at k and k + 1. The process's
    floor (k) names a link the chain no longer holds: the walk must not stop there."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(root), PASSWORD) as first:
        _commit(first, 0)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as backup:
        for minute in range(1, 4):
            _commit(backup, minute)
            own = sign_manifest(backup, now=START + timedelta(minutes=minute, seconds=30))
        assert isinstance(own, Link) and backup.journal.seen == own.position
        shutil.rmtree(root)
        shutil.copytree(copy, root)  # rolled back: link k is gone
        older, newer = _commit(backup, 10), _commit(backup, 11)
        with open_repository(LocalBackend(root), PASSWORD) as other:
            doomed = forget_snapshots(other, RetentionPolicy(last=1), now=START + timedelta(minutes=12))
        assert older in {d.id for d in doomed if not d.keep}  # signed at k - 2, and again at k - 1
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as third:
            for second in range(2):
                after = sign_manifest(third, now=START + timedelta(minutes=13, seconds=second))
        assert isinstance(after, Link) and after.position == own.position + 1
        link = sign_manifest(backup, now=START + timedelta(minutes=14))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer]
        signed = read_manifest(LocalBackend(root), public_key=repository_public_key(backup), repo_id=backup.config.id)
        assert signed is not None and signed.snapshot_ids <= set(snapshot_ids(backup))


def test_a_removal_forget_signed_in_format_1_before_the_upgrade_is_honoured(tmp_path: Path) -> None:
    """A snapshot committed while the manifest was format 1, forgotten by another process while
    it was unsigned (a format-1 manifest lists no removal of what it never signed), then the
    repository upgraded (``manifest sign --chain``): the signer's first delta must not sign it."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF, manifest_format=1)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as backup:
        older, newer = _commit(backup, 1), _commit(backup, 2)
        with open_repository(LocalBackend(root), PASSWORD) as other:
            doomed = forget_snapshots(other, RetentionPolicy(last=1), now=START + timedelta(minutes=3))
        assert older in {d.id for d in doomed if not d.keep}
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as admin:
            upgrade = sign_manifest(admin, chain=True, checkpoint=True, now=START + timedelta(minutes=4))
        assert isinstance(upgrade, Link) and upgrade.position == 1
        link = sign_manifest(backup, now=START + timedelta(minutes=5))
        assert isinstance(link, Link)
        signed = read_manifest(LocalBackend(root), public_key=repository_public_key(backup), repo_id=backup.config.id)
        assert signed is not None and newer in signed.snapshot_ids
        assert signed.snapshot_ids <= set(snapshot_ids(backup)), "a forgotten snapshot signed back in"
