"""Signing format-2 links (:mod:`backup.chainsign`) while another process forgets snapshots.

A long-running signer (``serve``) holds what its jobs committed in a journal until its next
signature. A ``forget`` running meanwhile in another process signs the removal of one of those
snapshots first and then removes it; the signer's next delta must not sign it back in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup import chainsign
from backup.forget import forget_snapshots
from backup.manifest import read_manifest, repository_public_key, sign_manifest
from backup.manifestchain import Link, link_key
from backup.opening import init_repository, open_repository
from backup.repository import Repository
from backup.retention import RetentionPolicy
from backup.snapshot import Snapshot, save_snapshot, snapshot_ids
from replication.plan import missing_referenced
from storage.backend import Backend
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
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
        read: list[str] = []
        real = chainsign.link_reader

        def counted(backend: Backend) -> Callable[[str], bytes]:
            load = real(backend)
            return lambda key: read.append(key) or load(key)

        monkeypatch.setattr(chainsign, "link_reader", counted)
        link = sign_manifest(serve, now=START + timedelta(minutes=14))
        assert isinstance(link, Link) and [e.id for e in link.snapshots] == [newer]
        # the probe past the head, then back to forget's link (seen + 1); nothing at or before ``seen``
        head = link.position - 1
        assert read == [link_key(head + 1)] + [link_key(p) for p in range(head - 1, seen, -1)]
        _signed_state_holds_only_present_snapshots(root, serve)
