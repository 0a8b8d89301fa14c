"""Signing format-2 links (:mod:`backup.chainsign`) while another process forgets snapshots.

A long-running signer (``serve``) holds what its jobs committed in a journal until its next
signature. A ``forget`` running meanwhile in another process signs the removal of one of those
snapshots first and then removes it; the signer's next delta must not sign it back in.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup import chainsign
from backup.forget import forget_snapshots
from backup.manifest import read_manifest, repository_public_key, sign_manifest
from backup.manifestchain import Link, link_key, verify_link
from backup.manifeststate import MANIFEST_KEY
from backup.opening import init_repository, open_repository
from backup.repository import Repository
from backup.retention import RetentionPolicy
from backup.snapshot import Snapshot, save_snapshot, snapshot_ids
from replication.plan import missing_referenced
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF, counting_link_reads
from tests.conftest import PASSWORD

START = datetime(2026, 12, 1, tzinfo=UTC)


def _commit(repo: Repository, minutes: int) -> str:
    when = START + timedelta(minutes=minutes)
    return save_snapshot(repo, Snapshot(when, "h", "u", "path", "/x", ("0" * 64,), system="s")).id


def _signed_state_holds_only_present_snapshots(root: Path, repo: Repository) -> None:
    backend = LocalBackend(root)
    signed = read_manifest(backend, public_key=repository_public_key(repo), repo_id=repo.config.id)
    assert signed is not None
    present = set(snapshot_ids(repo))
    assert signed.snapshot_ids <= present, signed.snapshot_ids - present
    source = {info.key: info for info in backend.list("")}
    assert missing_referenced(signed, source, {}) == {}


def _signed_by_another_process(root: Path, links: int, *, minute: int = 0) -> int:
    """``links`` deltas signed by another process (a CLI backup's, say); the last one's position."""
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as other:
        for n in range(links):
            last = sign_manifest(other, now=START + timedelta(minutes=minute, seconds=n))
    assert isinstance(last, Link) and not last.full
    return last.position


def _forget_in_another_process(root: Path, *, last: int, now: datetime) -> set[str]:
    with open_repository(LocalBackend(root), PASSWORD) as other:
        decisions = forget_snapshots(other, RetentionPolicy(last=last), now=now)
    return {d.id for d in decisions if not d.keep}


def test_a_forget_racing_an_unsigned_delta_is_not_signed_back_in(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with contextlib.ExitStack() as session:
        serve = session.enter_context(open_repository(LocalBackend(root), PASSWORD, sign_on_close=False))
        older, newer = _commit(serve, 1), _commit(serve, 2)  # committed, in serve's journal, not signed yet
        doomed = _forget_in_another_process(root, last=1, now=START + timedelta(minutes=3))
        assert doomed == {older}
        link = sign_manifest(serve, now=START + timedelta(minutes=4))
        assert isinstance(link, Link) and not link.full
        assert [e.id for e in link.snapshots] == [newer]
        _signed_state_holds_only_present_snapshots(root, serve)


def test_a_removal_signed_before_the_head_is_still_honoured(tmp_path: Path) -> None:
    """Another signer's link after forget's removal: the signer must look past the head it extends."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with contextlib.ExitStack() as session:
        serve = session.enter_context(open_repository(LocalBackend(root), PASSWORD, sign_on_close=False))
        older, newer = _commit(serve, 1), _commit(serve, 2)
        assert _forget_in_another_process(root, last=1, now=START + timedelta(minutes=3)) == {older}
        with open_repository(LocalBackend(root), PASSWORD) as third:
            _commit(third, 3)  # its close signs a link after forget's
        link = sign_manifest(serve, now=START + timedelta(minutes=5))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer]
        _signed_state_holds_only_present_snapshots(root, serve)


def test_the_signer_reads_only_the_links_after_the_position_it_had_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with contextlib.ExitStack() as session:
        serve = session.enter_context(open_repository(LocalBackend(root), PASSWORD, sign_on_close=False))
        for minute in range(3):
            _commit(serve, minute)
            sign_manifest(serve, now=START + timedelta(minutes=minute, seconds=30))
        seen = serve.journal.seen
        assert seen is not None
        older, newer = _commit(serve, 10), _commit(serve, 11)
        assert older in _forget_in_another_process(root, last=1, now=START + timedelta(minutes=12))
        with open_repository(LocalBackend(root), PASSWORD) as third:
            _commit(third, 13)
        read = counting_link_reads(monkeypatch)
        link = sign_manifest(serve, now=START + timedelta(minutes=14))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer]
        # the probe past the head, then back to forget's link (seen + 1); nothing at or before ``seen``
        head = link.position - 1
        assert read == [link_key(head + 1)] + [link_key(p) for p in range(head - 1, seen, -1)]
        _signed_state_holds_only_present_snapshots(root, serve)


def test_a_new_process_reads_no_link_older_than_the_head_its_unlock_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that has not signed yet (a CLI backup, serve's first job) knows where the chain
    was before it wrote anything: the unlock read the head. Its signature does not walk back to
    the checkpoint (40 links here, up to 1,440 in a day)."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    head = _signed_by_another_process(root, 40)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as backup:
        assert backup.journal.seen == head
        snapshot = _commit(backup, 1)
        read = counting_link_reads(monkeypatch)
        link = sign_manifest(backup, now=START + timedelta(minutes=2))
    assert isinstance(link, Link) and not link.full and link.position == head + 1
    assert [e.id for e in link.snapshots] == [snapshot]
    assert read == [link_key(head + 1)]  # the probe past the head; no link behind it


def test_a_new_process_finds_a_removal_signed_after_the_head_its_unlock_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    head = _signed_by_another_process(root, 40)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as backup:
        older, newer = _commit(backup, 10), _commit(backup, 11)
        assert _forget_in_another_process(root, last=1, now=START + timedelta(minutes=12)) == {older}
        after = _signed_by_another_process(root, 3, minute=13)  # forget's link is no longer the head
        read = counting_link_reads(monkeypatch)
        link = sign_manifest(backup, now=START + timedelta(minutes=14))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer]
        assert link.position == after + 1
        assert read == [link_key(after + 1)] + [link_key(p) for p in range(after - 1, head, -1)]
        _signed_state_holds_only_present_snapshots(root, backup)


def test_without_a_known_position_the_removal_is_found_back_to_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No manifest of this key could be read at the unlock (``seen`` unknown): the links back to
    the checkpoint in effect are read, and the removal among them is honoured all the same."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    _signed_by_another_process(root, 5)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as backup:
        backup.journal.seen = None
        older, newer = _commit(backup, 10), _commit(backup, 11)
        assert _forget_in_another_process(root, last=1, now=START + timedelta(minutes=12)) == {older}
        after = _signed_by_another_process(root, 3, minute=13)
        read = counting_link_reads(monkeypatch)
        link = sign_manifest(backup, now=START + timedelta(minutes=14))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer] and link.checkpoint == 1
        assert read == [link_key(after + 1)] + [link_key(p) for p in range(after - 1, 0, -1)]
        _signed_state_holds_only_present_snapshots(root, backup)


def test_a_removal_forget_signs_in_a_checkpoint_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """forget's signature falls due as a checkpoint: it lists the snapshot it removes, which no
    earlier state names (never signed), so a signer holding it unsigned learns of it there."""
    monkeypatch.setattr(chainsign, "CHECKPOINT_EVERY", 3)
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    head = _signed_by_another_process(root, 2)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as serve:
        older, newer = _commit(serve, 1), _commit(serve, 2)
        assert _forget_in_another_process(root, last=1, now=START + timedelta(minutes=3)) == {older}
        key = link_key(head + 1)
        forgets = verify_link(
            LocalBackend(root).load(key), public_key=repository_public_key(serve), repo_id=None, where=key
        )
        assert forgets.full and older in {r.id for r in forgets.removed}
        link = sign_manifest(serve, now=START + timedelta(minutes=4))
        assert isinstance(link, Link) and not link.full and [e.id for e in link.snapshots] == [newer]
        _signed_state_holds_only_present_snapshots(root, serve)


def test_an_unlock_that_reads_no_manifest_of_its_key_knows_no_position(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    head = _signed_by_another_process(root, 2)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as repo:
        assert repo.journal.seen == head
    LocalBackend(root).save(MANIFEST_KEY, b"{}")  # damaged (or planted)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as repo:
        assert repo.journal.seen is None


def test_a_checkpoint_signed_between_forgets_removal_and_its_deletes_does_not_keep_them_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint lists ``snapshots/``: one written after forget signed the removal but before it
    removed the objects lists the doomed snapshot again. forget signs it away once it is gone."""
    root = tmp_path / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=FAST_KDF)
    with open_repository(LocalBackend(root), PASSWORD) as first:
        older = _commit(first, 1)
        _commit(first, 2)
    real_remove = LocalBackend.remove
    checkpoints: list[Link] = []

    def remove(self: LocalBackend, key: str) -> None:
        if not checkpoints:
            with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as prune:
                signed = sign_manifest(prune, checkpoint=True, now=START + timedelta(minutes=3, seconds=30))
            assert isinstance(signed, Link) and older in {e.id for e in signed.snapshots}  # listed again
            checkpoints.append(signed)
        real_remove(self, key)

    monkeypatch.setattr(LocalBackend, "remove", remove)
    assert _forget_in_another_process(root, last=1, now=START + timedelta(minutes=3)) == {older}
    monkeypatch.setattr(LocalBackend, "remove", real_remove)
    assert checkpoints
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as repo:
        _signed_state_holds_only_present_snapshots(root, repo)
