"""Format 2 (a signed chain of delta links) against a hostile storage: what verify-offsite must see.

Every test builds a real repository on a local directory, signs with the real signer and
verifies with :func:`replication.verify.verify_repository` — what ``bcpctl verify-offsite``
runs — pinned to the key and to the head the offsite accepted last. The property test drives
random sequences of backups, forgets, signatures and checkpoints, optionally followed by one
attack, and compares the verdict with a brute-force model of what the primary signed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup import chainsign
from backup.check import check_repository
from backup.manifest import MANIFEST_KEY, Manifest, repository_public_key, sign_manifest, signing_key, verify_manifest
from backup.manifestchain import Link, chained_link, encode_link, link_key, verify_link
from backup.manifeststate import ManifestInvalid
from backup.opening import init_repository, open_repository
from backup.repository import Repository
from backup.snapshot import Snapshot, save_snapshot
from replication.verify import IntegrityReport, verify_repository
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

START = datetime(2026, 12, 1, tzinfo=UTC)
ATTACKS = ("none", "tamper", "drop", "reorder", "replay", "fork")


@dataclass
class Primary:
    """The repository, its one long-lived session, and the model of what it signed."""

    root: Path
    repo: Repository
    #: the session's context (kept: dropping it would close the repository)
    session: contextlib.ExitStack
    clock: datetime = START
    present: set[str] = field(default_factory=set)
    signed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    #: snapshots forget removed here, which the offsite still holds for its delete delay
    kept: dict[str, bytes] = field(default_factory=dict)

    @property
    def backend(self) -> LocalBackend:
        return self.repo.backend  # type: ignore[return-value]

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def backup(self) -> str:
        when = self.tick()
        snap = Snapshot(
            when, "h", "u", "path", f"/x{len(self.present)}", ("0" * 64,), system=f"s{len(self.present) % 3}"
        )
        snapshot_id = save_snapshot(self.repo, snap).id
        self.present.add(snapshot_id)
        return snapshot_id

    def sign(self, *, checkpoint: bool = False, without: frozenset[str] = frozenset()) -> Link:
        link = sign_manifest(self.repo, now=self.tick(), chain=True, checkpoint=checkpoint, without=without)
        assert isinstance(link, Link)
        self.links.append(link)
        self.heads.append(self.backend.load(MANIFEST_KEY))
        self.signed = set(self.present) - without
        self.removed = (self.removed | without) - self.signed
        return link

    def forget(self) -> str:
        """Retention removes the oldest snapshot; the offsite still holds it (its delete delay)."""
        doomed = min(self.signed)
        self.present.discard(doomed)
        self.sign(without=frozenset({doomed}))
        self.kept[doomed] = self.backend.load(f"snapshots/{doomed}")
        self.backend.remove(f"snapshots/{doomed}")
        return doomed

    def verify(self, accepted: Link | None = None) -> IntegrityReport:
        accepted = accepted or self.links[-1]
        offsite = self.root / "offsite"
        shutil.rmtree(offsite, ignore_errors=True)
        shutil.copytree(self.root / "repo", offsite)
        for snapshot_id, raw in self.kept.items():
            (offsite / "snapshots" / snapshot_id).write_bytes(raw)
        return verify_repository(
            LocalBackend(offsite),
            pinned_key=repository_public_key(self.repo),
            min_sequence=accepted.sequence,
            accepted_sha256=accepted.digest,
            read_data=False,
            now=self.clock,
        )

    def window(self) -> set[int]:
        """Positions a verification reads: from the checkpoint before the head's checkpoint to the head."""
        by_position = {link.position: link for link in self.links}
        head = self.links[-1]
        newest = head.position if head.full else head.checkpoint
        if newest == 1:
            return set(range(1, head.position + 1))
        before = by_position[newest - 1]
        oldest = before.position if before.full else before.checkpoint
        return set(range(oldest, head.position + 1))


def _primary(root: Path) -> Primary:
    backend = LocalBackend(root / "repo", create=True)
    init_repository(backend, PASSWORD, kdf=FAST_KDF)
    session = contextlib.ExitStack()
    repo = session.enter_context(open_repository(LocalBackend(root / "repo"), PASSWORD, sign_on_close=False))
    primary = Primary(root, repo, session)
    head = primary.backend.load(MANIFEST_KEY)  # a new repository's first link: a checkpoint at position 1
    first = verify_link(head, public_key=repository_public_key(repo), repo_id=repo.config.id, where=MANIFEST_KEY)
    assert first.position == 1 and first.full
    primary.links.append(first)
    primary.heads.append(head)
    return primary


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[Primary]:
    made = _primary(tmp_path)
    with made.session:
        yield made


def _manifest_problems(report: IntegrityReport) -> list[str]:
    return [p.detail for p in report.problems if p.kind == "manifest"]


def _one_line_naming(report: IntegrityReport, *words: str) -> str:
    problems = _manifest_problems(report)
    assert len(problems) == 1, report.problems
    assert "\n" not in problems[0]
    for word in words:
        assert word in problems[0], problems[0]
    return problems[0]


def test_an_honest_chain_verifies_with_deltas_a_forget_and_a_checkpoint(primary: Primary) -> None:
    primary.backup()
    primary.backup()
    primary.sign()
    primary.backup()
    primary.sign()
    gone = primary.forget()
    primary.sign(checkpoint=True)
    primary.backup()
    delta = primary.sign()
    assert not delta.full and len(delta.snapshots) == 1  # a signature names what changed, not the history
    report = primary.verify()
    assert report.ok, report.problems
    assert report.snapshots_signed == len(primary.signed) == 3
    assert [k.id for k in report.kept_by_delay] == [gone]  # forget in a delta: kept, not unsigned


def test_a_forget_in_a_delta_leaves_the_removed_snapshot_signed_away(primary: Primary) -> None:
    primary.backup()
    primary.backup()
    primary.sign()
    doomed = primary.forget()
    link = primary.links[-1]
    assert not link.full and [r.id for r in link.removed] == [doomed]
    report = primary.verify()
    assert report.ok and doomed not in {p.key for p in report.problems}
    assert [k.id for k in report.kept_by_delay] == [doomed]


def test_a_tampered_delta_is_named(primary: Primary) -> None:
    primary.backup()
    primary.sign()
    primary.backup()
    primary.sign()
    key = link_key(2)
    primary.backend.save(key, primary.backend.load(key).replace(b'\\"system\\":\\"s', b'\\"system\\":\\"t', 1))
    _one_line_naming(primary.verify(), key, "tampered")


def test_a_dropped_delta_is_named(primary: Primary) -> None:
    primary.backup()
    primary.sign()
    primary.backup()
    primary.sign()
    primary.backend.remove(link_key(2))
    _one_line_naming(primary.verify(), link_key(2), "dropped")


def test_reordered_deltas_are_named(primary: Primary) -> None:
    for _ in range(3):
        primary.backup()
        primary.sign()
    two, three = primary.backend.load(link_key(2)), primary.backend.load(link_key(3))
    primary.backend.save(link_key(2), three)
    primary.backend.save(link_key(3), two)
    _one_line_naming(primary.verify(), "reordered")


def test_a_replayed_old_chain_is_a_rollback(primary: Primary) -> None:
    primary.backup()
    primary.sign()
    old = primary.heads[-1]
    primary.backup()
    primary.sign()
    primary.backend.save(MANIFEST_KEY, old)
    primary.backend.remove(link_key(3))
    _one_line_naming(primary.verify(), "rolled back")


def test_a_forked_chain_is_named(primary: Primary) -> None:
    """A key holder on a restored old copy signs on from an older head than the one accepted."""
    primary.backup()
    primary.sign()
    fork_point = primary.heads[-1]
    primary.backup()
    accepted = primary.sign()
    primary.backend.remove(link_key(3))
    primary.backend.save(MANIFEST_KEY, fork_point)
    primary.backup()
    primary.sign()
    _one_line_naming(primary.verify(accepted), "forked")


def test_a_checkpoint_that_disagrees_with_the_chain_is_named(primary: Primary) -> None:
    kept = primary.backup()
    primary.backup()
    head = primary.sign()
    # a key holder's checkpoint (a bug, or a malicious one) that drops a signed snapshot without signing it away
    dropped = next(e for e in _full_state(primary).snapshots if e.id != kept)
    forged = replace(
        head,
        sequence=head.sequence + 1,
        position=head.position + 1,
        previous=head.digest,
        checkpoint=head.position + 1,
        full=True,
        snapshots=tuple(e for e in _full_state(primary).snapshots if e.id != dropped.id),
        indexes=(),
        packs={},
        removed=(),
    )
    raw = encode_link(forged, signing_key(primary.repo.master, primary.repo.config.id))
    primary.backend.save(link_key(forged.position), raw)
    primary.backend.save(MANIFEST_KEY, raw)
    _one_line_naming(primary.verify(head), "checkpoint disagrees", dropped.id[:16])


def test_checkpoints_come_every_so_many_links(primary: Primary, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainsign, "CHECKPOINT_EVERY", 3)
    for _ in range(7):
        primary.backup()
        primary.sign()
    assert [link.full for link in primary.links] == [True, False, False, True, False, False, True, False]
    report = primary.verify()
    assert report.ok, report.problems
    assert primary.window() == set(range(4, 9))  # bounded: the last two checkpoints' spans


def test_a_format_1_reader_path_still_verifies(tmp_path: Path) -> None:
    """Repositories that never upgrade keep format 1, and verify as before."""
    backend = LocalBackend(tmp_path / "repo", create=True)
    init_repository(backend, PASSWORD, kdf=FAST_KDF, manifest_format=1)
    with open_repository(LocalBackend(tmp_path / "repo"), PASSWORD) as repo:
        save_snapshot(repo, Snapshot(START, "h", "u", "path", "/x", ("0" * 64,)))
        key = repository_public_key(repo)
    assert json.loads(json.loads(backend.load(MANIFEST_KEY))["body"])["version"] == 1
    assert not list(backend.list("manifests/"))
    assert verify_repository(backend, pinned_key=key, read_data=False).ok


def _full_state(primary: Primary) -> Manifest:
    raw = primary.backend.load(MANIFEST_KEY)
    return verify_manifest(raw, public_key=None, repo_id=None, load=primary.backend.load)


OPS = st.lists(st.sampled_from(("backup", "backup", "sign", "forget", "checkpoint")), min_size=1, max_size=10)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(ops=OPS, attack=st.sampled_from(ATTACKS), pick=st.integers(min_value=0, max_value=50))
def test_the_verdict_equals_the_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[str], attack: str, pick: int
) -> None:
    primary = _primary(tmp_path_factory.mktemp("chain"))
    try:
        for op in ops:
            if op == "backup":
                primary.backup()
            elif op == "sign":
                primary.sign()
            elif op == "checkpoint":
                primary.sign(checkpoint=True)
            elif op == "forget" and primary.signed:
                primary.forget()
        accepted = primary.links[-1]
        positions = [link.position for link in primary.links]
        window = primary.window()
        backend = primary.backend
        expect: str | None = None  # the word the one manifest problem must carry, or None: verifies
        if attack == "tamper":
            target = positions[pick % len(positions)]
            backend.save(link_key(target), backend.load(link_key(target)).replace(b'"signature"', b'"signaturf"'))
            expect = link_key(target) if target in window else None
        elif attack == "drop":
            target = positions[pick % len(positions)]
            backend.remove(link_key(target))
            expect = link_key(target) if target in window else None
        elif attack == "reorder" and len(positions) > 1:
            one = positions[pick % len(positions)]
            two = positions[(pick + 1) % len(positions)]
            first, second = backend.load(link_key(one)), backend.load(link_key(two))
            backend.save(link_key(one), second)
            backend.save(link_key(two), first)
            expect = "reordered" if window & {one, two} else None
        elif attack == "replay" and len(positions) > 1:
            back = pick % (len(positions) - 1)
            backend.save(MANIFEST_KEY, primary.heads[back])
            expect = "rolled back"
        elif attack == "fork" and len(positions) > 1:
            back = pick % (len(positions) - 1)
            for position in positions[back + 1 :]:
                backend.remove(link_key(position))
            backend.save(MANIFEST_KEY, primary.heads[back])
            primary.sign()
            expect = "forked"
        report = primary.verify(accepted)
        if expect is None:
            assert not _manifest_problems(report), report.problems
            verified = report.snapshots_signed
            assert verified == len(primary.signed)
            assert {k.id for k in report.kept_by_delay} == set(primary.kept) - primary.present
            unsigned = {p.key.removeprefix("snapshots/") for p in report.problems if p.kind == "unsigned"}
            assert unsigned == primary.present - primary.signed
            assert report.ok == (primary.present == primary.signed)
        else:
            _one_line_naming(report, expect)
            assert not report.ok
    finally:
        primary.session.close()


def test_check_counts_links_as_repository_objects(primary: Primary) -> None:
    primary.backup()
    primary.sign()
    report = check_repository(primary.repo)
    named = [p for p in report.problems + report.notes if p.object.startswith("manifests/")]
    assert not named, named


def test_a_link_reached_back_by_hash_is_read_without_its_signature_and_only_with_that_hash(primary: Primary) -> None:
    """:func:`chained_link`: what the signer's walk for forget's removals reads behind the head."""
    primary.backup()
    earlier, later = primary.sign(), primary.sign()
    raw = primary.backend.load(link_key(earlier.position))
    found = chained_link(raw, digest=later.previous, position=earlier.position, next_position=later.position)
    assert found == earlier and found.digest == earlier.digest
    other = primary.backend.load(link_key(later.position))  # genuine, signed, but not the one chained to
    with pytest.raises(ManifestInvalid, match="not the one link"):
        chained_link(other, digest=later.previous, position=earlier.position, next_position=later.position)
    with pytest.raises(ManifestInvalid, match="holds link"):
        chained_link(raw, digest=later.previous, position=earlier.position + 5, next_position=later.position)
