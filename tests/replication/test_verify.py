"""Keyless verification at the offsite finds damage; ``--repair`` fetches it again from the primary."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.manifest import MANIFEST_KEY
from dc.state import open_state
from replication.ledger import Ledger
from replication.repair import repair_repository
from replication.sync import replicate
from replication.verify import verify_repository
from storage.backend import Backend
from storage.errors import ObjectNotFound
from storage.local import LocalBackend
from storage.url import open_backend
from tests.replication import primary
from tests.servers.storage import KINDS, plant


@pytest.fixture
def replicated(tmp_path: Path, storage_url: str) -> Iterator[tuple[LocalBackend, Backend, str]]:
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    data = primary.write_tree(tmp_path / "data", files=6)
    primary.backup(source, data)
    target = open_backend(storage_url, create=True)
    try:
        result = replicate(source, target, Ledger(open_state()))
        assert result.ok
        yield source, target, storage_url
    finally:
        target.close()


def _damage(target: Backend, how: str) -> str:
    pack = max(target.list("data/"), key=lambda i: i.size).key
    raw = target.load(pack)
    if how == "corrupted":
        plant(target, pack, raw[:500] + bytes([raw[500] ^ 1]) + raw[501:])
    elif how == "truncated":
        plant(target, pack, raw[: len(raw) // 2])
    else:
        target.remove(pack)
    return pack


@pytest.mark.parametrize("storage_url", KINDS, indirect=True)
@pytest.mark.parametrize("how", ["corrupted", "truncated", "missing"])
def test_damage_at_the_target_is_found_and_repaired_from_the_other_site(
    replicated: tuple[LocalBackend, Backend, str], how: str
) -> None:
    source, target, _ = replicated
    assert verify_repository(target).ok
    pack = _damage(target, how)
    report = verify_repository(target)
    assert not report.ok
    assert pack in report.damaged_keys()
    assert pack in report.summary()
    fixed = repair_repository(target, source)
    assert fixed.repaired == [pack] and fixed.ok
    assert verify_repository(target).ok
    assert target.load(pack) == source.load(pack)


@pytest.mark.parametrize("storage_url", [KINDS[0]], indirect=True)
def test_presence_only_mode_finds_truncation_without_reading_data(replicated) -> None:  # type: ignore[no-untyped-def]
    _, target, _ = replicated
    pack = _damage(target, "truncated")
    report = verify_repository(target, read_data=False)
    assert [p.kind for p in report.problems if p.key == pack] == ["size"]
    assert report.bytes_checked == 0


@pytest.mark.parametrize("storage_url", [KINDS[0]], indirect=True)
def test_a_planted_snapshot_and_a_damaged_manifest_are_reported(replicated) -> None:  # type: ignore[no-untyped-def]
    source, target, _ = replicated
    planted = b"a snapshot that prune removed, put back by someone with storage access"
    key = f"snapshots/{hashlib.sha256(planted).hexdigest()}"
    target.save(key, planted)
    report = verify_repository(target)
    assert [(p.key, p.kind) for p in report.problems] == [(key, "unsigned")]
    raw = target.load(MANIFEST_KEY)
    target.save(MANIFEST_KEY, raw[:-40])
    report = verify_repository(target)
    assert any(p.key == MANIFEST_KEY and p.kind == "manifest" for p in report.problems)
    fixed = repair_repository(target, source)
    assert MANIFEST_KEY in fixed.repaired
    # repair never deletes: the planted snapshot stays for an operator to inspect
    assert [p.key for p in fixed.remaining] == [key]
    target.stat(key)


@pytest.mark.parametrize("storage_url", [KINDS[0]], indirect=True)
def test_a_key_slot_that_differs_from_the_manifest_is_damage(replicated) -> None:  # type: ignore[no-untyped-def]
    source, target, _ = replicated
    slot = next(target.list("keys/")).key
    target.save(slot, b'{"version": 1}')
    report = verify_repository(target)
    assert [(p.key, p.kind) for p in report.problems] == [(slot, "damaged")]
    assert repair_repository(target, source).repaired == [slot]


@pytest.mark.parametrize("storage_url", [KINDS[0]], indirect=True)
def test_a_rollback_of_the_target_manifest_is_found_against_the_pin(replicated) -> None:  # type: ignore[no-untyped-def]
    source, target, _ = replicated
    pin = Ledger(open_state()).pin(json.loads(source.load("config"))["id"])
    assert pin is not None
    report = verify_repository(target, pinned_key=pin.public_key, min_sequence=pin.sequence + 1)
    assert any("rolled back" in p.detail for p in report.problems)


@pytest.mark.parametrize("storage_url", [KINDS[0]], indirect=True)
def test_repair_refuses_what_it_cannot_check(replicated) -> None:  # type: ignore[no-untyped-def]
    source, target, _ = replicated
    pack = _damage(target, "missing")
    source.remove(pack)  # gone at the primary too
    fixed = repair_repository(target, source)
    assert pack in fixed.unrepairable and not fixed.ok
    with pytest.raises(ObjectNotFound):
        target.stat(pack)
