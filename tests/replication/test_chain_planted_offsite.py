"""A link planted offsite, ahead of the primary, with the replicator's credentials (no manifest key).

Positions are predictable (the next one after the offsite's head), and so is a delta's size
within a few bytes, so the attacker can leave bytes at a position before the primary signs it
— of another size, or of the very size the genuine link will have. Replication must put the
primary's signed link there, so what the offsite accepts is what ``verify-offsite`` verifies,
never a copy that verification refuses for good while every replication reports success.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backup.manifest import MANIFEST_KEY
from backup.manifestchain import link_key, verify_link
from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import replicate
from replication.verify import verify_repository
from storage.local import LocalBackend
from tests.replication import primary


def _position(backend: LocalBackend) -> int:
    return verify_link(backend.load(MANIFEST_KEY), public_key=None, repo_id=None, where=MANIFEST_KEY).position


@pytest.mark.parametrize("size", ["other", "same"])
def test_a_link_planted_offsite_at_the_next_position_is_replaced_by_the_signed_one(tmp_path: Path, size: str) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    ledger = Ledger(open_state())
    repo_id = primary.init(source)
    data = primary.write_tree(tmp_path / "data", files=2)
    primary.backup(source, data)
    assert replicate(source, target, ledger).ok
    next_key = link_key(_position(target) + 1)

    primary.mutate(data)
    primary.backup(source, data)  # signs the next link at the primary
    genuine = source.load(next_key)
    planted = b"x" * (len(genuine) if size == "same" else 100)  # "same": a guess of the delta's size
    target.save(next_key, planted)

    result = replicate(source, target, ledger)
    assert result.ok, result.problem()
    assert target.load(next_key) == genuine
    pin = ledger.pin(repo_id)
    assert pin is not None
    report = verify_repository(
        target,
        pinned_key=pin.public_key,
        min_sequence=pin.sequence,
        accepted_sha256=pin.manifest_sha256,
        read_data=False,
    )
    assert report.ok, report.problems
