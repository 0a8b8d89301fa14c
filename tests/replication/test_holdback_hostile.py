"""Attacks on the short landing (replication/holdback.py): whatever the primary's storage holds,
the offsite's head names only what it holds, never moves backwards or off its line, and
``verify-offsite`` stays green.

The attacker can write the primary's storage (delete, truncate, plant, put back old bytes) but
cannot sign. The sites are those of ``test_holdback`` (a format-2 chain: link 2 at the offsite,
link 3 "goka-juki" and link 4 "mito-kokuho" new).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from backup.manifest import MANIFEST_KEY, sign_manifest, verify_signed
from backup.manifestchain import Link
from backup.manifeststate import link_key
from backup.opening import open_repository
from backup.repository import CONFIG_KEY, RepoConfig
from backup.snapshot import list_snapshots
from dc.clock import utcnow
from dc.errors import BcpError
from dc.state import open_state
from replication.ledger import Ledger
from replication.records import Pin
from replication.sync import SyncOptions, replicate
from replication.verify import verify_repository
from storage.backend import Backend
from storage.errors import ObjectNotFound
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.replication import primary, test_holdback
from tests.replication.test_holdback import Sites, damage
from tests.servers.storage import plant

sites = test_holdback.sites  # the fixture: local and Ceph RGW with Object Lock


def assert_offsite_whole(sites: Sites) -> None:
    """The invariants of a run that lands short: the head and the pin agree, and the state they
    name is held whole at the offsite (verify-offsite green)."""
    pin = sites.ledger.pin(RepoConfig.parse(sites.target.load(CONFIG_KEY), CONFIG_KEY).id)
    assert pin is not None
    head = verify_signed(sites.target.load(MANIFEST_KEY), public_key=None, repo_id=None, where="manifest")
    assert head.sequence == pin.sequence
    report = verify_repository(
        sites.target, pinned_key=pin.public_key, min_sequence=pin.sequence, accepted_sha256=pin.manifest_sha256
    )
    assert report.ok, report.problems


def test_a_snapshot_forgotten_after_the_landing_link_and_planted_back_is_sent_or_not_landed_on(
    sites: Sites,
) -> None:
    """Link 5 forgets goka's snapshot (signed, then removed); the attacker plants its bytes back
    at the primary (or ``forget`` died between its signature and the removal) and removes a pack
    of link 4. Link 3 names goka's snapshot and the primary lists it, so link 3 looks whole: but
    the plan copies only snapshots the *head* signs, so goka's never goes, and the offsite's head
    would name a snapshot it lacks."""
    goka = sites.source.load(f"snapshots/{sites.goka}")
    before = sites.target.load(MANIFEST_KEY)
    with open_repository(sites.source, PASSWORD, sign_on_close=False) as repo:
        sign_manifest(repo, without=frozenset({sites.goka}))
    sites.source.remove(f"snapshots/{sites.goka}")
    plant(sites.source, f"snapshots/{sites.goka}", goka)  # put back by whoever writes the primary
    victim = sites.packs_of(4)[0]
    raw = damage(sites.source, victim, "removed")

    result = sites.run()
    assert not result.ok and list(result.not_intact) == [victim]
    assert_offsite_whole(sites)
    assert sites.target.load(MANIFEST_KEY) == before  # link 3 cannot be made whole by this run

    sites.source.save(victim, raw)
    mended = sites.run()
    assert not mended.not_intact and mended.manifest_written
    assert sites.target.load(MANIFEST_KEY) == sites.source.load(MANIFEST_KEY)
    assert_offsite_whole(sites)


def test_a_short_landing_never_names_a_link_the_offsite_lacks(sites: Sites) -> None:
    """Sanity for the helper: the landed link and the ones before it are all at the offsite."""
    damage(sites.source, sites.packs_of(4)[0], "removed")
    assert not sites.run().ok
    for position in (1, 2, 3):
        sites.target.stat(link_key(position))
    try:
        sites.target.stat(link_key(4))
    except ObjectNotFound:
        pass
    else:
        raise AssertionError("link 4 names the removed pack and must wait")
    assert_offsite_whole(sites)


def link(sites: Sites, position: int) -> Link:
    found = verify_signed(sites.source.load(link_key(position)), public_key=None, repo_id=None, where="link")
    assert isinstance(found, Link)
    return found


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_index_file_of_the_newest_link_lands_the_offsite_on_the_link_before_it(
    sites: Sites, how: str
) -> None:
    """As a damaged pack of link 4 does: the offsite moves up to link 3, which it can hold whole."""
    victim = sorted(sites.indexes_of(4))[0]
    damage(sites.source, victim, how)
    result = sites.run()
    assert not result.ok
    assert result.target_sequence == link(sites, 3).sequence
    assert_offsite_whole(sites)


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_snapshot_of_the_newest_link_leaves_no_unsigned_snapshot_offsite(sites: Sites, how: str) -> None:
    """mito's snapshot (link 4) damaged at the primary: goka's (link 3) must not arrive unless the
    offsite's head signs it."""
    damage(sites.source, f"snapshots/{sites.mito}", how)
    result = sites.run()
    assert not result.ok
    assert_offsite_whole(sites)


@pytest.mark.parametrize("sites", ["local"], indirect=True)
def test_a_planted_damaged_pack_no_state_names_does_not_stop_the_signed_state(sites: Sites) -> None:
    bogus = "ab" * 32
    plant(sites.source, f"data/ab/{bogus}", b"\0" * 4096)
    result = sites.run()
    assert not result.ok and f"data/ab/{bogus}" in result.errors
    assert result.target_sequence == link(sites, 4).sequence
    assert sites.target.load(MANIFEST_KEY) == sites.source.load(MANIFEST_KEY)
    assert_offsite_whole(sites)


#: what the property test does to an object at the primary
HOW = ("removed", "truncated", "flipped", "grown")


def test_any_objects_damaged_any_way_at_the_primary_keep_the_offsite_whole(tmp_path: Path) -> None:
    """Property: one or two objects of the primary (links, the head, packs, index files,
    snapshots, key slots, config) removed, truncated, flipped or grown; replicate twice (no
    delete delay); then mend them and replicate again. Whatever happens: no traceback, nothing the
    offsite held is deleted, its head and pin agree and never move back or off the line it
    accepted, verify-offsite is green; a run that says ok left the offsite at the source's head;
    once mended, the offsite reaches the source's head."""
    template = tmp_path / "template"
    source = LocalBackend(template / "primary", create=True)
    target = LocalBackend(template / "offsite", create=True)
    primary.init(source)
    primary.backup(source, primary.write_tree(tmp_path / "a", files=2, seed=1))
    ledger = Ledger(open_state())
    assert replicate(source, target, ledger).ok
    first_pin = ledger.pin(source_repo(source))
    assert first_pin is not None
    primary.backup(source, primary.write_tree(tmp_path / "b", files=2, seed=2))
    primary.backup(source, primary.write_tree(tmp_path / "c", files=2, seed=3), system="mito-kokuho")
    with open_repository(source, PASSWORD) as repo:
        sign_manifest(repo, checkpoint=True)
    primary.backup(source, primary.write_tree(tmp_path / "d", files=2, seed=4))
    keys = sorted(info.key for info in source.list("") if not info.key.startswith("locks/"))
    runs = iter(range(1000))
    damages = st.tuples(st.sampled_from(keys), st.sampled_from(HOW))

    @settings(
        max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "24")),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.generate],
    )
    @given(st.lists(damages, min_size=1, max_size=2, unique_by=lambda d: d[0]))
    def check(damages: list[tuple[str, str]]) -> None:
        place = tmp_path / f"run{next(runs)}"
        shutil.copytree(template, place)
        src = LocalBackend(place / "primary")
        tgt = LocalBackend(place / "offsite")
        ledger.set_pin(first_pin, utcnow())
        held_before = {info.key for info in tgt.list("")}
        originals = {key: damage(src, key, how) for key, how in damages}
        options = SyncOptions(jobs=2, delete_delay=timedelta(0))
        for _ in range(2):
            try:
                result = replicate(src, tgt, ledger, options)
            except BcpError:
                result = None
            assert held_before <= {info.key for info in tgt.list("")}, "the offsite lost an object"
            assert_whole_since(tgt, ledger, first_pin)
            if result is not None and result.ok:
                assert tgt.load(MANIFEST_KEY) == src.load(MANIFEST_KEY)
        for key, raw in originals.items():
            (src.root / key).write_bytes(raw)
        mended = replicate(src, tgt, ledger, options)
        assert mended.ok, mended.problem()
        assert tgt.load(MANIFEST_KEY) == src.load(MANIFEST_KEY)
        assert_whole_since(tgt, ledger, first_pin)

    check()


def source_repo(source: Backend) -> str:
    with open_repository(source, PASSWORD) as repo:
        return repo.config.id


def assert_whole_since(target: Backend, ledger: Ledger, first: Pin) -> None:
    """The offsite's head is the pinned one, descends from ``first`` and is held whole."""
    pin = ledger.pin(first.repository)
    assert pin is not None and pin.sequence >= first.sequence
    raw = target.load(MANIFEST_KEY)
    assert hashlib.sha256(raw).hexdigest() == pin.manifest_sha256
    for sequence, digest in ((pin.sequence, pin.manifest_sha256), (first.sequence, first.manifest_sha256)):
        report = verify_repository(target, pinned_key=pin.public_key, min_sequence=sequence, accepted_sha256=digest)
        assert report.ok, report.problems


def test_a_key_slot_removed_at_the_primary_is_never_deleted_offsite(sites: Sites) -> None:
    """The attacker removes the key slots at the primary (the repository key is wrapped in them):
    the offsite's signed manifest names them, so the offsite keeps them whatever the delete delay."""
    slots = sorted(info.key for info in sites.source.list("keys/"))
    assert slots
    for key in slots:
        sites.source.remove(key)
    sites.options = SyncOptions(jobs=2, delete_delay=timedelta(0))
    for _ in range(2):  # the first run notices them missing, the second would delete them
        sites.run()
    assert slots == sorted(info.key for info in sites.target.list("keys/"))
    assert_offsite_whole(sites)
    with open_repository(sites.target, PASSWORD) as replica:  # still restorable
        assert sites.first in {s.id for s in list_snapshots(replica)}


class Watched(LocalBackend):
    """The offsite's directory; ``on_save(key)`` runs before each write (the attacker at the primary
    reacting to the run's progress: the packs phase has begun, the links were read and checked)."""

    on_save: Callable[[str], None] = staticmethod(lambda key: None)

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        self.on_save(key)
        super().save(key, data, retain_until=retain_until)


@pytest.mark.parametrize("sites", ["local"], indirect=True)
def test_a_link_replaced_at_the_primary_while_the_run_copies_packs_never_reaches_the_offsite(sites: Sites) -> None:
    key = link_key(3)
    genuine = sites.source.load(key)
    doc = json.loads(genuine)
    doc["signature"] = doc["signature"][:-2] + ("00" if doc["signature"][-2:] != "00" else "11")
    forged = json.dumps(doc, indent=1).encode() + b"\n"
    assert len(forged) == len(genuine)
    target = Watched(sites.target_url)
    sites.target = target

    def swap(written: str) -> None:
        if written.startswith("data/"):
            sites.source.save(key, forged)

    target.on_save = swap
    sites.run()
    target.on_save = Watched.on_save
    sites.source.save(key, genuine)  # the attacker covers their tracks; the offsite must still be whole
    sites.run()
    assert sites.target.load(key) == genuine
    assert_offsite_whole(sites)


STEPS = ("backup", "backup", "backup-mito", "checkpoint", "forget", "damage", "damage", "mend", "run", "run")


def test_runs_between_backups_checkpoints_forgets_and_moving_damage_keep_the_offsite_whole(tmp_path: Path) -> None:
    """Property: a primary that backs up, checkpoints (as prune signs), forgets and has objects
    the offsite lacks damaged and mended in any order, replicated between any of them (no delete
    delay): after every run the offsite's head is its pin, descends from every head it accepted
    before, is held whole and lost nothing; once all is mended, a run reaches the source's head."""
    ledger = Ledger(open_state())
    examples = iter(range(1000))

    @settings(
        max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "6")),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.generate],
    )
    @given(st.lists(st.sampled_from(STEPS), min_size=6, max_size=12), st.data())
    def check(steps: list[str], data: st.DataObject) -> None:
        place = tmp_path / f"ex{next(examples)}"
        src = LocalBackend(place / "primary", create=True)
        tgt = LocalBackend(place / "offsite", create=True)
        primary.init(src)
        snapshots = [primary.backup(src, primary.write_tree(place / "t0", files=2, seed=0))[0]]
        options = SyncOptions(jobs=2, delete_delay=timedelta(0))
        assert replicate(src, tgt, ledger, options).ok
        repo_id = source_repo(src)
        accepted = [ledger.pin(repo_id)]
        damaged: dict[str, bytes] = {}
        for n, step in enumerate([*steps, "run", "mend", "run"]):
            if step.startswith("backup"):
                system = "mito-kokuho" if step == "backup-mito" else "goka-juki"
                tree = primary.write_tree(place / f"t{n}", files=2, seed=n)
                snapshots.append(primary.backup(src, tree, system=system)[0])
            elif step == "checkpoint":
                with open_repository(src, PASSWORD) as repo:
                    sign_manifest(repo, checkpoint=True)
            elif step == "forget" and len(snapshots) > 1:
                primary.forget(src, snapshots.pop(data.draw(st.integers(0, len(snapshots) - 2))))
            elif step == "damage":
                lacking = sorted(
                    info.key
                    for info in src.list("")
                    if info.key.startswith(("data/", "index/", "snapshots/"))
                    and info.key not in damaged
                    and not (place / "offsite" / info.key).exists()
                )
                if lacking:
                    key = data.draw(st.sampled_from(lacking))
                    damaged[key] = damage(src, key, data.draw(st.sampled_from(HOW)))
            elif step == "mend":
                for key, raw in damaged.items():
                    (src.root / key).write_bytes(raw)
                damaged.clear()
            elif step == "run":
                held = {info.key for info in tgt.list("")}
                result = replicate(src, tgt, ledger, options)
                if not result.ok:  # a run that lands short (or fails) deletes nothing
                    assert held <= {info.key for info in tgt.list("")}, "the offsite lost an object"
                for earlier in accepted:
                    assert earlier is not None
                    assert_whole_since(tgt, ledger, earlier)
                accepted.append(ledger.pin(repo_id))
                event("landed short" if result.not_intact and result.manifest_written else f"ok={result.ok}")
                if result.ok or not damaged:
                    assert result.ok, result.problem()
                    assert tgt.load(MANIFEST_KEY) == src.load(MANIFEST_KEY)

    check()


def test_an_offsite_at_format_1_lands_short_on_the_upgraded_chain(tmp_path: Path) -> None:
    """The offsite holds a format-1 manifest; the primary upgrades (link 1, a checkpoint), backs up
    twice (links 2 and 3) and loses a pack of link 3: the offsite lands on link 2, whole."""
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    primary.init(source, manifest_format=1)
    primary.backup(source, primary.write_tree(tmp_path / "a", files=2, seed=1))
    ledger = Ledger(open_state())
    assert replicate(source, target, ledger).ok
    first = ledger.pin(source_repo(source))
    assert first is not None
    with open_repository(source, PASSWORD) as repo:
        sign_manifest(repo, chain=True)
    primary.backup(source, primary.write_tree(tmp_path / "b", files=2, seed=2))
    primary.backup(source, primary.write_tree(tmp_path / "c", files=2, seed=3), system="mito-kokuho")
    three = verify_signed(source.load(link_key(3)), public_key=None, repo_id=None, where="link")
    assert isinstance(three, Link)
    victim = sorted(three.packs)[0]
    raw = damage(source, victim, "removed")

    result = replicate(source, target, ledger)
    assert not result.ok and list(result.not_intact) == [victim]
    assert target.load(MANIFEST_KEY) == source.load(link_key(2))
    assert_whole_since(target, ledger, first)

    source.save(victim, raw)
    assert replicate(source, target, ledger).ok
    assert target.load(MANIFEST_KEY) == source.load(MANIFEST_KEY)
    assert_whole_since(target, ledger, first)
