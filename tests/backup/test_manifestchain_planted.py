"""Links planted by someone who can write the storage but holds no manifest key (the offsite's
replicator credentials, or a careless copy): each is named in one line by what verifies the
chain, never read whole past any genuine link's size, and never an internal error.

Every test builds a real repository on a local directory with the real signer (the model of
:mod:`tests.backup.test_manifestchain`) and verifies it with
:func:`replication.verify.verify_repository`, what ``bcpctl verify-offsite`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backup import objectsize
from backup.manifest import MANIFEST_KEY, repository_public_key, sign_manifest
from backup.manifestchain import link_key
from backup.manifeststate import ManifestInvalid
from replication.verify import IntegrityReport, verify_repository
from storage.local import LocalBackend
from tests.backup.test_manifestchain import Primary, _primary

#: a bound far below the real one (1 GiB), so a planted giant costs the test no memory
SMALL_BOUND = 64 * 1024


class CountingBackend(LocalBackend):
    """A real local backend that remembers the most bytes one load of each key returned."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read: dict[str, int] = {}

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = super().load(key, offset, length)
        self.read[key] = max(self.read.get(key, 0), len(data))
        return data


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Primary]:
    """Links 1 (init's checkpoint), 2 and 3 (deltas), each delta adding one snapshot."""
    made = _primary(tmp_path)
    with made.session:
        for _ in range(2):
            made.backup()
            made.sign()
        yield made


def _verify(made: Primary, backend: LocalBackend | None = None) -> IntegrityReport:
    accepted = made.links[-1]
    return verify_repository(
        backend or LocalBackend(made.root / "repo"),
        pinned_key=repository_public_key(made.repo),
        min_sequence=accepted.sequence,
        accepted_sha256=accepted.digest,
        read_data=False,
        now=made.clock,
    )


def _one_manifest_line(report: IntegrityReport, *words: str) -> str:
    problems = [p.detail for p in report.problems if p.kind == "manifest"]
    assert len(problems) == 1 and "\n" not in problems[0], report.problems
    for word in words:
        assert word in problems[0], problems[0]
    return problems[0]


def test_a_link_padded_past_any_genuine_size_is_refused_unread(chain: Primary, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(objectsize.MAX_BYTES, "manifest link", SMALL_BOUND)
    key = link_key(2)
    genuine = chain.backend.load(key)
    assert len(genuine) < SMALL_BOUND
    # still the genuine link as JSON (whitespace after it): read whole, it would even parse
    chain.backend.save(key, genuine + b" " * (4 * SMALL_BOUND))
    counting = CountingBackend(chain.root / "repo")
    report = _verify(chain, counting)
    _one_manifest_line(report, key, "stray or planted, not read")
    assert counting.read.get(key, 0) <= SMALL_BOUND, counting.read


def test_a_signer_meeting_a_planted_giant_after_the_head_refuses_in_one_line_unread(
    chain: Primary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failover the offsite's copy is signed on: a giant at the next position is not read whole."""
    monkeypatch.setitem(objectsize.MAX_BYTES, "manifest link", SMALL_BOUND)
    key = link_key(4)
    chain.backend.save(key, b"[" + b" " * (4 * SMALL_BOUND))
    chain.backup()
    with pytest.raises(ManifestInvalid, match="stray or planted, not read") as caught:
        sign_manifest(chain.repo, now=chain.tick(), chain=True)
    assert key in str(caught.value) and "\n" not in str(caught.value)


def _body_edit(field: str, value: float) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        doc = json.loads(raw)
        body = json.loads(doc["body"])
        body[field] = value
        doc["body"] = json.dumps(body)  # Infinity: what Python's own JSON reader accepts
        return json.dumps(doc).encode()

    return edit


#: planted bytes (from the genuine ones) that a JSON reader or int() chokes on other than by ValueError
PLANTED: dict[str, Callable[[bytes], bytes]] = {
    "deeply nested document": lambda raw: b"[" * 200_000 + b"]" * 200_000,
    "deeply nested body": lambda raw: json.dumps(
        {"format": "bcpctl-manifest", "body": "[" * 200_000 + "]" * 200_000, "signature": "00" * 64}
    ).encode(),
    "infinite sequence": _body_edit("sequence", float("inf")),
    "infinite position": _body_edit("position", float("inf")),
    "infinite checkpoint": _body_edit("checkpoint", float("-inf")),
    "truncated": lambda raw: raw[: len(raw) // 2],
}


@pytest.mark.parametrize("where", ["link", "head"])
@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_planted_link_a_parser_chokes_on_is_one_line_not_an_internal_error(
    chain: Primary, planted: str, where: str
) -> None:
    key = link_key(2) if where == "link" else MANIFEST_KEY
    chain.backend.save(key, PLANTED[planted](chain.backend.load(key)))
    report = _verify(chain)
    _one_manifest_line(report, key, "malformed")
    assert not report.ok


@pytest.mark.timeout(30)
@pytest.mark.parametrize("copied", [3, 2])
def test_a_copy_of_an_earlier_link_after_the_head_stops_the_signer_in_one_line(chain: Primary, copied: int) -> None:
    """A signer looking for the chain's end after the head must not follow a link back to itself."""
    key = link_key(4)
    chain.backend.save(key, chain.backend.load(link_key(copied)))  # equal content, another position
    chain.backup()
    with pytest.raises(ManifestInvalid, match="holds link") as caught:
        sign_manifest(chain.repo, now=chain.tick(), chain=True)
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_a_snapshot_hidden_with_the_pruned_link_that_added_it_is_named_by_the_checkpoint(chain: Primary) -> None:
    """Deleting a snapshot and the (no longer read) delta that signed it: the checkpoints still name it."""
    hidden = chain.links[1].snapshots[0].id  # added by link 2
    chain.sign(checkpoint=True)
    chain.sign(checkpoint=True)
    chain.backup()
    chain.sign()
    assert 2 not in chain.window()
    chain.backend.remove(link_key(2))
    chain.backend.remove(f"snapshots/{hidden}")
    report = _verify(chain)
    assert [(p.key, p.kind) for p in report.problems] == [(f"snapshots/{hidden}", "missing")]


def test_an_emptied_chain_is_named_missing_once_a_key_is_pinned(chain: Primary) -> None:
    for info in list(chain.backend.list("manifests/")):
        chain.backend.remove(info.key)
    chain.backend.remove(MANIFEST_KEY)
    report = _verify(chain)
    assert [(p.key, p.kind) for p in report.problems] == [(MANIFEST_KEY, "missing")]
