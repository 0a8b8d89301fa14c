"""The history view, verification and repair against every overwrite/delete a write credential can do.

The class, not the instance: hypothesis picks, for any subset of the replicated objects
(packs, indexes, snapshots, key slots, config and the manifest alike), a sequence of what the
replicator's own S3 credentials allow on a real Ceph RGW with Object Lock — PUT other bytes,
DELETE without a version id, and both in either order. Invariants:

* the :class:`~replication.history.HistoryView` (trusting the repository's manifest key) lists
  exactly the replicated keys and serves exactly the replicated bytes for each;
* ``verify_repository`` names exactly the attacked objects, each with an intact version;
* ``repair_repository`` with no other site makes every current version right again, after
  which the plain (unversioned) reads see the replicated state and verification is clean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backup.manifest import MANIFEST_KEY, encode_signed, public_key_hex, read_manifest
from dc.errors import UsageError
from dc.state import open_state
from replication.history import HistoryView, open_history
from replication.ledger import Ledger
from replication.repair import repair_repository
from replication.sync import SyncOptions, replicate
from replication.verify import verify_repository
from storage.backend import Backend
from storage.capabilities import versioned
from storage.local import LocalBackend
from storage.url import open_backend
from tests.replication import primary
from tests.servers.storage import LOCKED_BUCKET, s3_url

pytestmark = pytest.mark.s3

#: what the attacker does to one object, in order
OPS = {
    "overwrite": ("put",),
    "delete": ("delete",),
    "overwrite, delete": ("put", "delete"),
    "delete, overwrite": ("delete", "put"),
    "overwrite twice": ("put", "put"),
}


@dataclass
class Replica:
    url: str
    target: Backend
    client: Any
    prefix: str
    state: dict[str, bytes]
    public_key: str

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=LOCKED_BUCKET, Key=self.prefix + key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=LOCKED_BUCKET, Key=self.prefix + key)


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    data = primary.write_tree(tmp_path / "data", files=3)
    primary.backup(backend, data)
    primary.mutate(data)
    primary.backup(backend, data)
    return backend


def _replica(ceph: Any, source: LocalBackend) -> Replica:
    url = s3_url(ceph, locked=True)
    target = open_backend(url)
    assert replicate(source, target, Ledger(open_state()), SyncOptions(object_lock_days=1)).ok
    state = {info.key: target.load(info.key) for info in target.list("")}
    manifest = read_manifest(target, public_key=None, repo_id=None)
    assert manifest is not None
    prefix = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/") + "/"
    return Replica(url, target, ceph.client(), prefix, state, manifest.public_key)


def _attack(replica: Replica, plan: dict[int, str]) -> dict[str, str]:
    """Apply ``plan`` (object number -> ops) and return ``{key: kind verify must report}``."""
    keys = sorted(replica.state)
    hit = {}
    for number, name in sorted(plan.items()):
        key = keys[number % len(keys)]
        for op in OPS[name]:
            if op == "put":
                replica.put(key, os.urandom(200))
            else:
                replica.delete(key)
        hit[key] = "deleted" if OPS[name][-1] == "delete" else "overwritten"
    return hit


@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.dictionaries(st.integers(0, 10_000), st.sampled_from(sorted(OPS)), min_size=1, max_size=6))
@example(plan={n: sorted(OPS)[n % len(OPS)] for n in range(18)})  # every object of the replica at once
def test_every_overwrite_and_delete_is_read_around_reported_and_repaired(
    ceph, s3_env, source: LocalBackend, plan: dict[int, str]
) -> None:  # type: ignore[no-untyped-def]
    replica = _replica(ceph, source)
    hit = _attack(replica, plan)
    print("HIT", hit, len(replica.state))

    view = open_history(replica.target)
    assert isinstance(view, HistoryView)
    view.trust(replica.public_key)
    assert sorted(i.key for i in view.list("")) == sorted(replica.state)
    for key, body in replica.state.items():
        assert view.load(key) == body, key
    assert sorted(view.recoveries) == sorted(hit)

    report = verify_repository(replica.target, pinned_key=replica.public_key)
    assert {p.key: p.kind for p in report.problems} == hit
    assert all(p.version_id and "replicate --repair" in p.detail for p in report.problems)

    fixed = repair_repository(replica.target, None, pinned_key=replica.public_key)
    assert fixed.ok and fixed.repaired == sorted(hit), (fixed.unrepairable, fixed.remaining)
    plain = open_backend(replica.url)
    assert sorted(i.key for i in plain.list("")) == sorted(replica.state)
    for key, body in replica.state.items():
        assert plain.load(key) == body, key
    assert verify_repository(plain, pinned_key=replica.public_key).ok


def test_a_manifest_signed_by_another_key_or_rolled_back_is_not_followed(ceph, s3_env, source: LocalBackend) -> None:  # type: ignore[no-untyped-def]
    replica = _replica(ceph, source)
    genuine = replica.state[MANIFEST_KEY]
    ledger = Ledger(open_state())
    pin = ledger.pin(read_manifest(replica.target, public_key=None, repo_id=None).repository)  # type: ignore[union-attr]
    assert pin is not None

    # forged: the same state claimed by the attacker's own key, dropping every snapshot
    manifest = read_manifest(replica.target, public_key=None, repo_id=None)
    assert manifest is not None
    attacker = Ed25519PrivateKey.generate()
    forged = replace(manifest, public_key=public_key_hex(attacker), snapshots=(), sequence=manifest.sequence + 1)
    replica.put(MANIFEST_KEY, encode_signed(forged, attacker))
    for snapshot in [k for k in replica.state if k.startswith("snapshots/")]:
        replica.delete(snapshot)
    view = open_history(replica.target)
    assert view is not None
    view.trust(replica.public_key)
    assert view.load(MANIFEST_KEY) == genuine
    assert {k for k in replica.state if k.startswith("snapshots/")} <= {i.key for i in view.list("snapshots/")}
    report = verify_repository(replica.target, pinned_key=pin.public_key, min_sequence=pin.sequence)
    assert {p.key: p.kind for p in report.problems if p.key == MANIFEST_KEY} == {MANIFEST_KEY: "overwritten"}

    # rolled back: an older genuine manifest put back over a newer one
    replica.put(MANIFEST_KEY, genuine)
    source_data = Path(source.root).parent / "data"
    primary.mutate(source_data, seed=7)
    primary.backup(source, source_data)
    assert replicate(source, replica.target, ledger, SyncOptions(object_lock_days=1)).ok
    newest = replica.target.load(MANIFEST_KEY)
    assert newest != genuine
    replica.put(MANIFEST_KEY, genuine)
    pin = ledger.pin(manifest.repository)
    assert pin is not None
    report = verify_repository(replica.target, pinned_key=pin.public_key, min_sequence=pin.sequence)
    assert [p.kind for p in report.problems if p.key == MANIFEST_KEY] == ["overwritten"]
    fixed = repair_repository(replica.target, None, pinned_key=pin.public_key, min_sequence=pin.sequence)
    assert fixed.ok and MANIFEST_KEY in fixed.repaired
    assert open_backend(replica.url).load(MANIFEST_KEY) == newest


def test_plain_reads_and_writes_bypass_history_and_the_view_refuses_writes(ceph, s3_env, source: LocalBackend) -> None:  # type: ignore[no-untyped-def]
    replica = _replica(ceph, source)
    assert versioned(replica.target) is not None
    view = open_history(replica.target)
    assert view is not None
    for write in (lambda: view.save("x", b"x"), lambda: view.save_new("x", b"x"), lambda: view.remove("config")):
        with pytest.raises(UsageError, match="read-only"):
            write()
    assert "x" not in {i.key for i in replica.target.list("")}
    assert open_history(LocalBackend(source.root)) is None
