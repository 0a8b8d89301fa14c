"""``replicate --repair`` puts back the links of a format-2 chain that the offsite lost or had
overwritten (the replicator's credentials, no key), from the other site: verify-offsite names
them only through the manifest's chain, so repair must find them itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup.manifestchain import link_key
from dc.state import open_state
from replication.ledger import Ledger
from replication.repair import repair_repository
from replication.sync import replicate
from replication.verify import verify_repository
from storage.local import LocalBackend
from tests.replication import primary


@pytest.mark.parametrize("damage", ["dropped", "overwritten", "both"])
def test_a_link_lost_or_overwritten_offsite_is_put_back_from_the_other_site(tmp_path: Path, damage: str) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    ledger = Ledger(open_state())
    repo_id = primary.init(source)
    data = primary.write_tree(tmp_path / "data", files=2)
    for seed in (3, 4):
        primary.mutate(data, seed=seed)
        primary.backup(source, data)
    assert replicate(source, target, ledger).ok
    pin = ledger.pin(repo_id)
    assert pin is not None
    if damage in ("dropped", "both"):
        target.remove(link_key(2))
    if damage in ("overwritten", "both"):
        target.save(link_key(1), b"encrypted by ransomware")
    assert not verify_repository(target, pinned_key=pin.public_key, min_sequence=pin.sequence, read_data=False).ok

    result = repair_repository(target, source, pinned_key=pin.public_key, min_sequence=pin.sequence)
    assert result.ok, (result.unrepairable, result.remaining)
    assert {link_key(1), link_key(2)} & set(result.repaired)
    report = verify_repository(
        target, pinned_key=pin.public_key, min_sequence=pin.sequence, accepted_sha256=pin.manifest_sha256
    )
    assert report.ok, report.problems
