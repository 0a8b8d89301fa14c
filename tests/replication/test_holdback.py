"""A pack truncated, removed, grown or flipped at the primary: the rest still replicates, the manifest waits.

Real repositories at a local primary, the offsite on a local directory or the real Ceph RGW
(with Object Lock). The primary signs a format-2 chain: link 2 is the state the offsite holds,
link 3 (system "goka-juki") and link 4 (system "mito-kokuho") are new. Damage in link 4's packs
lets the offsite land on link 3; damage in link 3's leaves it where it was. Either way the
offsite verifies green, and once the pack's bytes are back the next run ships everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from backup.manifest import MANIFEST_KEY, sign_manifest, verify_signed
from backup.manifeststate import link_key
from backup.opening import open_repository
from backup.snapshot import list_snapshots
from dc.state import open_state
from replication.errors import ManifestRefused
from replication.ledger import Ledger
from replication.sync import SyncOptions, SyncResult, replicate
from replication.verify import IntegrityReport, verify_repository
from storage.backend import Backend
from storage.errors import ObjectNotFound
from storage.local import LocalBackend
from storage.url import open_backend
from tests.conftest import PASSWORD, Cli
from tests.replication import primary
from tests.replication.test_cli import one_line_error
from tests.servers.storage import s3_url


@dataclass
class Sites:
    source: LocalBackend
    target: Backend
    target_url: str
    ledger: Ledger
    options: SyncOptions
    #: snapshot ids: the one the offsite holds, then the new ones by system
    first: str
    goka: str
    mito: str

    def run(self) -> SyncResult:
        return replicate(self.source, self.target, self.ledger, self.options)

    def verify(self) -> IntegrityReport:
        pin = self.ledger.pin(self.source_id())
        assert pin is not None
        return verify_repository(
            self.target, pinned_key=pin.public_key, min_sequence=pin.sequence, accepted_sha256=pin.manifest_sha256
        )

    def source_id(self) -> str:
        with open_repository(self.source, PASSWORD) as repo:
            return repo.config.id

    def packs_of(self, position: int) -> list[str]:
        link = verify_signed(self.source.load(link_key(position)), public_key=None, repo_id=None, where="link")
        return sorted(k for k in link.packs if k.startswith("data/"))

    def indexes_of(self, position: int) -> set[str]:
        link = verify_signed(self.source.load(link_key(position)), public_key=None, repo_id=None, where="link")
        return {f"index/{name}" for name in link.indexes}

    def head_sequence(self) -> int:
        return int(json.loads(json.loads(self.target.load(MANIFEST_KEY))["body"])["sequence"])

    def snapshots_at_target(self) -> set[str]:
        return {info.key.removeprefix("snapshots/") for info in self.target.list("snapshots/")}


@pytest.fixture(params=["local", pytest.param("s3-locked", marks=pytest.mark.s3)])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sites]:
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    first, _ = primary.backup(source, primary.write_tree(tmp_path / "a", files=3, seed=1))
    if request.param == "local":
        url, options = str(tmp_path / "offsite"), SyncOptions(jobs=2)
        target: Backend = LocalBackend(tmp_path / "offsite", create=True)
    else:
        ceph = request.getfixturevalue("ceph")
        request.getfixturevalue("s3_env")
        url, options = s3_url(ceph, locked=True), SyncOptions(jobs=2, object_lock_days=1)
        target = open_backend(url)
    ledger = Ledger(open_state())
    assert replicate(source, target, ledger, options).ok
    goka, _ = primary.backup(source, primary.write_tree(tmp_path / "b", files=3, seed=2))
    mito, _ = primary.backup(source, primary.write_tree(tmp_path / "c", files=3, seed=3), system="mito-kokuho")
    assert all(source.stat(link_key(p)).size for p in (3, 4)), "one link per backup"
    yield Sites(source, target, url, ledger, options, first, goka, mito)


def damage(source: LocalBackend, key: str, how: str) -> bytes:
    """Damage ``key`` at the primary as ``how`` says; return its bytes, to mend it with."""
    path = source.root / key
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "removed":
        path.unlink()
    elif how == "flipped":  # the right size: found only when the transfer hashes it
        path.write_bytes(raw[:100] + bytes([raw[100] ^ 1]) + raw[101:])
    else:  # grown: another size than the manifest signs
        path.write_bytes(raw + b"\0" * 100)
    return raw


@pytest.mark.parametrize("how", ["truncated", "removed", "grown", "flipped"])
def test_damage_in_the_newest_link_lands_the_offsite_on_the_link_before_it(sites: Sites, how: str) -> None:
    before = sites.head_sequence()
    victim = sites.packs_of(4)[0]
    raw = damage(sites.source, victim, how)

    result = sites.run()
    assert not result.ok and result.manifest_written
    assert list(result.not_intact) == [victim]
    link3 = verify_signed(sites.source.load(link_key(3)), public_key=None, repo_id=None, where="link")
    assert result.target_sequence == link3.sequence > before
    assert sites.ledger.pin(sites.source_id()).sequence == link3.sequence  # type: ignore[union-attr]
    assert sites.target.load(MANIFEST_KEY) == sites.source.load(link_key(3))
    # every other pack arrived; link 4, its index and snapshot wait
    assert {i.key for i in sites.target.list("data/")} == {i.key for i in sites.source.list("data/")} - {victim}
    assert sites.snapshots_at_target() == {sites.first, sites.goka}
    with pytest.raises(ObjectNotFound):
        sites.target.stat(link_key(4))
    problem = result.problem() or ""
    assert problem.startswith(f"refusing manifest {result.manifest_sequence} of ")
    assert f"1 object(s) that neither site holds intact (truncated?), e.g. {victim}" in problem
    assert f"{result.objects_copied} intact object(s) copied" in problem
    assert problem.endswith(f"the target holds manifest {link3.sequence}")
    report = sites.verify()
    assert report.ok, report.problems
    assert report.snapshots_signed == 2
    with open_repository(sites.target, PASSWORD) as replica:  # the landed state restores
        assert {s.id for s in list_snapshots(replica)} == {sites.first, sites.goka}

    (sites.source.root / victim).write_bytes(raw)
    mended = sites.run()
    assert mended.ok and mended.manifest_written and not mended.not_intact, mended.problem()
    assert sites.target.load(MANIFEST_KEY) == sites.source.load(MANIFEST_KEY)
    assert sites.snapshots_at_target() == {sites.first, sites.goka, sites.mito}
    report = sites.verify()
    assert report.ok and report.snapshots_signed == 3, report.problems


@pytest.mark.parametrize("how", ["truncated", "removed", "grown", "flipped"])
def test_damage_in_the_first_new_link_keeps_the_offsite_where_it_was_and_still_sends_the_packs(
    sites: Sites, how: str
) -> None:
    before = sites.target.load(MANIFEST_KEY)
    victim = sites.packs_of(3)[0]
    raw = damage(sites.source, victim, how)

    result = sites.run()
    assert not result.ok and not result.manifest_written
    assert list(result.not_intact) == [victim]
    assert sites.target.load(MANIFEST_KEY) == before
    assert {i.key for i in sites.target.list("data/")} == {i.key for i in sites.source.list("data/")} - {victim}
    assert sites.snapshots_at_target() == {sites.first}
    assert not [i for i in sites.target.list("manifests/") if i.key in (link_key(3), link_key(4))]
    new_indexes = {i.key for i in sites.source.list("index/")} - {i.key for i in sites.target.list("index/")}
    # an index file the offsite's state does not name waits: it may name the damaged pack
    assert new_indexes == sites.indexes_of(3) | sites.indexes_of(4)
    assert result.held_back == len(new_indexes) + 2 + 2 + (0 if how == "removed" else 1)
    assert result.target_sequence == sites.head_sequence()
    assert (result.problem() or "").endswith(f"the target holds manifest {sites.head_sequence()}")
    report = sites.verify()
    assert report.ok, report.problems

    (sites.source.root / victim).write_bytes(raw)
    mended = sites.run()
    assert mended.ok and mended.manifest_written, mended.problem()
    assert mended.phases["packs"].objects == 1  # the rest came with the failed run
    assert sites.target.load(MANIFEST_KEY) == sites.source.load(MANIFEST_KEY)
    assert sites.verify().ok


def test_a_rollback_after_a_short_landing_is_still_refused(sites: Sites) -> None:
    """The landed link is the new floor: the primary's storage putting back link 2 as the head is refused."""
    victim = sites.packs_of(4)[0]
    damage(sites.source, victim, "removed")
    old_head = sites.source.load(link_key(2))
    assert not sites.run().ok
    sites.source.save(MANIFEST_KEY, old_head)
    with pytest.raises(ManifestRefused, match="rolled-back"):
        sites.run()


def test_format_1_has_no_earlier_state_to_land_on(tmp_path: Path) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    primary.init(source, manifest_format=1)
    first, _ = primary.backup(source, primary.write_tree(tmp_path / "a", files=3, seed=1))
    ledger = Ledger(open_state())
    assert replicate(source, target, ledger).ok
    before = target.load(MANIFEST_KEY)
    packs = {i.key for i in source.list("data/")}
    primary.backup(source, primary.write_tree(tmp_path / "b", files=3, seed=2))
    victim = sorted({i.key for i in source.list("data/")} - packs)[0]
    damage(source, victim, "truncated")
    result = replicate(source, target, ledger)
    assert not result.ok and list(result.not_intact) == [victim]
    assert target.load(MANIFEST_KEY) == before
    assert {i.key for i in target.list("snapshots/")} == {f"snapshots/{first}"}
    assert {i.key for i in target.list("data/")} == {i.key for i in source.list("data/")} - {victim}
    assert verify_repository(target, pinned_key=ledger.pin(result.repository).public_key).ok  # type: ignore[union-attr]


@pytest.mark.parametrize("sites", ["local"], indirect=True)
def test_the_cli_exits_1_with_the_refusal_and_counts_what_it_copied(sites: Sites, cli: Cli) -> None:
    victim = sites.packs_of(4)[0]
    damage(sites.source, victim, "removed")
    done = cli("replicate", "--from", str(sites.source.root), "--to", sites.target_url, "--json")
    line = one_line_error(done, 1)
    assert "neither site holds intact (truncated?)" in line and victim in line
    run = json.loads(done.stdout)["runs"][0]
    assert not run["ok"] and run["objects_copied"] > 0 and run["not_intact"] == {victim: "missing at both sites"}
    assert run["held_back"] > 0 and run["target_sequence"] is not None and run["manifest_written"]


@pytest.mark.parametrize("sites", ["local"], indirect=True)
def test_deleting_packs_at_the_primary_makes_the_offsite_drop_nothing(sites: Sites) -> None:
    """An attacker at the primary's storage removes a pack the offsite holds and a new one, with no
    delete delay: the runs that land short delete nothing, and the landed state protects the rest."""
    old = sorted(i.key for i in sites.target.list("data/"))[0]
    sites.source.remove(old)
    sites.source.remove(sites.packs_of(3)[0])
    sites.options = SyncOptions(jobs=2, delete_delay=timedelta(0))
    for _ in range(2):  # the first run would only notice it missing, the second delete it
        result = sites.run()
        assert not result.ok and result.deleted == [] and not result.manifest_written
    sites.target.stat(old)
    assert sites.verify().ok


@pytest.mark.parametrize("sites", ["local"], indirect=True)
def test_a_tampered_manifest_with_a_missing_pack_is_refused_before_anything_is_written(sites: Sites) -> None:
    sites.source.remove(sites.packs_of(4)[0])
    doc = json.loads(sites.source.load(MANIFEST_KEY))
    body = json.loads(doc["body"])
    body["time"] = "2020-01-01T00:00:00+00:00"
    doc["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    sites.source.save(MANIFEST_KEY, json.dumps(doc).encode())
    before = {i.key for i in sites.target.list("")}
    with pytest.raises(ManifestRefused, match="signature does not verify"):
        sites.run()
    assert {i.key for i in sites.target.list("")} == before


def test_a_first_run_lands_on_a_link_whose_verification_reaches_before_the_heads(tmp_path: Path) -> None:
    """Links 1 and 3 are checkpoints, 4 and 5 backups, 6 a checkpoint (as prune signs): the head's
    walk starts at 3, but link 4's verification reads back to 1, so links 1 and 2 must go too."""
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    primary.init(source)
    primary.backup(source, primary.write_tree(tmp_path / "a", files=2, seed=1))
    checkpoint(source)
    goka, _ = primary.backup(source, primary.write_tree(tmp_path / "b", files=2, seed=2))
    primary.backup(source, primary.write_tree(tmp_path / "c", files=2, seed=3), system="mito-kokuho")
    victim = verify_signed(source.load(link_key(5)), public_key=None, repo_id=None, where="link").packs
    checkpoint(source)
    assert source.load(MANIFEST_KEY) == source.load(link_key(6))
    damage(source, sorted(victim)[0], "removed")

    ledger = Ledger(open_state())
    result = replicate(source, target, ledger)
    assert not result.ok and result.manifest_written
    assert target.load(MANIFEST_KEY) == source.load(link_key(4))
    assert all(target.stat(link_key(p)) for p in (1, 2, 3, 4))
    pin = ledger.pin(result.repository)
    assert pin is not None
    report = verify_repository(
        target, pinned_key=pin.public_key, min_sequence=pin.sequence, accepted_sha256=pin.manifest_sha256
    )
    assert report.ok and report.snapshots_signed == 2, report.problems
    assert goka in {i.key.removeprefix("snapshots/") for i in target.list("snapshots/")}


def checkpoint(backend: Backend) -> None:
    with open_repository(backend, PASSWORD) as repo:
        sign_manifest(repo, checkpoint=True)
