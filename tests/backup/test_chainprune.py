"""Prune removes the format-2 links no verification reads any more, and the chain stays what
verify-offsite accepts: after a prune killed at each step, and against a storage that drops,
forges or replays links once old ones are gone."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backup.chainprune import LINKS_KEPT, remove_old_links
from backup.manifest import MANIFEST_KEY, repository_public_key, sign_manifest
from backup.manifestchain import link_key, verify_link
from backup.opening import open_repository
from backup.prune import prune
from replication.verify import IntegrityReport, verify_repository
from storage.local import LocalBackend
from tests.backup.test_manifestchain import _primary as _model_primary
from tests.conftest import PASSWORD
from tests.replication import primary


def _links(root: Path) -> list[int]:
    return sorted(int(p.name) for p in (root / "manifests").iterdir())


def _age_links(root: Path, by: timedelta = LINKS_KEPT + timedelta(days=1)) -> None:
    then = time.time() - by.total_seconds()
    for path in (root / "manifests").iterdir():
        os.utime(path, (then, then))


def _checkpoint(backend: LocalBackend) -> None:
    with open_repository(backend, PASSWORD, sign_on_close=False) as repo:
        sign_manifest(repo, checkpoint=True)


def _build(root: Path) -> tuple[Path, Path]:
    """Links 1 (init's checkpoint), 2 and 3 (deltas), 4 (checkpoint), 5 (delta), 6 (checkpoint), 7 (delta)."""
    repo = root / "repo"
    backend = LocalBackend(repo, create=True)
    primary.init(backend)
    data = primary.write_tree(root / "data", files=2, size=20_000)
    for seed in (10, 11):
        primary.mutate(data, seed=seed)
        primary.backup(backend, data)
    _checkpoint(backend)
    primary.mutate(data, seed=12)
    primary.backup(backend, data)
    _checkpoint(backend)
    primary.mutate(data, seed=13)
    primary.backup(backend, data)
    assert _links(repo) == [1, 2, 3, 4, 5, 6, 7]
    return repo, data


def _head(repo: Path) -> tuple[int, str]:
    raw = (repo / MANIFEST_KEY).read_bytes()
    link = verify_link(raw, public_key=None, repo_id=None, where=MANIFEST_KEY)
    return link.sequence, link.digest


def _verify(repo: Path, key: str, accepted: tuple[int, str]) -> IntegrityReport:
    return verify_repository(
        LocalBackend(repo), pinned_key=key, min_sequence=accepted[0], accepted_sha256=accepted[1], read_data=False
    )


def _key(repo: Path) -> str:
    with open_repository(LocalBackend(repo), PASSWORD, sign_on_close=False) as opened:
        return repository_public_key(opened)


def _prune(repo: Path) -> int:
    with open_repository(LocalBackend(repo), PASSWORD) as opened:
        return prune(opened, grace_seconds=0).links_removed


def _one_manifest_line(report: IntegrityReport, *words: str) -> None:
    problems = [p.detail for p in report.problems if p.kind == "manifest"]
    assert len(problems) == 1 and "\n" not in problems[0], report.problems
    for word in words:
        assert word in problems[0], problems[0]


def test_prune_removes_old_links_only_and_the_chain_still_verifies(tmp_path: Path) -> None:
    repo, _ = _build(tmp_path)
    key = _key(repo)
    assert _prune(repo) == 0  # every link younger than LINKS_KEPT stays, whatever the chain
    assert _links(repo) == [1, 2, 3, 4, 5, 6, 7, 8]
    _age_links(repo)
    assert _prune(repo) == 7  # checkpoint 9; link 8 is a checkpoint, so nothing before it is read
    assert _links(repo) == [8, 9]
    report = _verify(repo, key, _head(repo))
    assert report.ok, report.problems
    assert report.snapshots_signed == 4


def _pruned(tmp_path: Path) -> tuple[Path, str, dict[int, bytes], bytes]:
    """A chain pruned to links 6..8, with the copies of the removed links an attacker kept."""
    repo, data = _build(tmp_path)
    old = {position: (repo / link_key(position)).read_bytes() for position in _links(repo)}
    old_head = (repo / MANIFEST_KEY).read_bytes()
    _age_links(repo)
    assert _prune(repo) == 5
    assert _links(repo) == [6, 7, 8]
    primary.mutate(data, seed=14)
    primary.backup(LocalBackend(repo), data)  # a delta after prune's checkpoint
    return repo, _key(repo), old, old_head


ATTACKS: dict[str, tuple[Callable[[Path, dict[int, bytes], bytes], None], tuple[str, ...]]] = {
    "dropped": (lambda repo, old, head: (repo / link_key(7)).unlink(), ("manifests/000000000007", "dropped")),
    "forged": (
        lambda repo, old, head: (repo / link_key(8)).write_bytes(
            (repo / link_key(8)).read_bytes().replace(b"goka-juki", b"goka-jukj", 1)
        ),
        ("manifests/000000000008", "tampered"),
    ),
    "replayed-old-link": (
        lambda repo, old, head: (repo / link_key(7)).write_bytes(old[5]),
        ("manifests/000000000007", "holds link 5"),
    ),
    "replayed-old-chain": (
        lambda repo, old, head: [
            *((repo / link_key(p)).write_bytes(raw) for p, raw in old.items()),
            (repo / MANIFEST_KEY).write_bytes(head),
        ],
        ("rolled back",),
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_after_pruning_a_dropped_forged_or_replayed_link_is_refused(tmp_path: Path, attack: str) -> None:
    repo, key, old, old_head = _pruned(tmp_path)
    accepted = _head(repo)
    assert _verify(repo, key, accepted).ok
    tamper, words = ATTACKS[attack]
    tamper(repo, old, old_head)
    report = _verify(repo, key, accepted)
    assert not report.ok
    _one_manifest_line(report, *words)


def test_a_head_accepted_before_the_pruned_links_is_refused_in_one_line_naming_the_cause(tmp_path: Path) -> None:
    """A pin older than what the chain keeps cannot be shown to be an ancestor: refused, never assumed."""
    repo, data = _build(tmp_path)
    stale = _head(repo)  # accepted at link 7, before prune
    _age_links(repo)
    _prune(repo)
    _age_links(repo)
    primary.mutate(data, seed=15)
    primary.backup(LocalBackend(repo), data)
    _checkpoint(LocalBackend(repo))
    _prune(repo)  # links up to 8 go, 7 with them
    assert 7 not in _links(repo)
    _one_manifest_line(_verify(repo, _key(repo), stale), "no longer stored", f"sequence {stale[0]}")


@pytest.mark.parametrize("point", ["prune.before-checkpoint", "prune.before-links", "prune.link-removed"])
def test_a_prune_killed_at_each_step_leaves_a_chain_verify_offsite_accepts(cli, tmp_path: Path, point: str) -> None:  # type: ignore[no-untyped-def]
    repo, _ = _build(tmp_path)
    key, accepted = _key(repo), _head(repo)
    _age_links(repo)
    killed = cli("prune", "--repo", str(repo), "--grace", "0", env={"BCPCTL_FAILPOINTS": point})
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    left = _links(repo)
    assert {6, 7} <= set(left)
    expected = {"prune.before-checkpoint": 7, "prune.before-links": 8, "prune.link-removed": 8}[point]
    assert max(left) == expected and len(left) == {"prune.link-removed": 7}.get(point, expected)
    report = _verify(repo, key, accepted)
    assert report.ok, report.problems
    done = cli("prune", "--repo", str(repo), "--grace", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["links_removed"] >= 1
    _age_links(repo)
    shown = cli("prune", "--repo", str(repo), "--grace", "0")
    assert shown.returncode == 0 and "manifest link(s) no verification reads any more removed" in shown.stdout
    report = _verify(repo, key, _head(repo))  # what the next replication accepts
    assert report.ok, report.problems


def test_replication_removes_pruned_links_offsite_after_the_delay_and_verify_offsite_accepts_both(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    repo, _ = _build(tmp_path)
    offsite = tmp_path / "offsite"
    env = {"BCPCTL_PASSWORD": ""}
    done = cli("replicate", "--from", str(repo), "--to", str(offsite), env=env)
    assert done.returncode == 0, done.stderr
    _age_links(repo)
    _prune(repo)
    assert _links(repo) == [6, 7, 8]
    done = cli("replicate", "--from", str(repo), "--to", str(offsite), env=env)
    assert done.returncode == 0, done.stderr
    assert _links(offsite) == [1, 2, 3, 4, 5, 6, 7, 8]  # kept for the delete delay (or an Object Lock)
    verified = cli("verify-offsite", "--repo", str(offsite), "--json", env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout + verified.stderr
    done = cli("replicate", "--from", str(repo), "--to", str(offsite), "--delete-delay", "0s", env=env)
    assert done.returncode == 0, done.stderr
    assert _links(offsite) == [6, 7, 8]  # the deletion propagated like any other
    verified = cli("verify-offsite", "--repo", str(offsite), "--json", env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["snapshots_signed"] == 4, verified.stdout
    shutil.rmtree(offsite / "manifests")
    (offsite / "manifests").mkdir()
    lost = cli("verify-offsite", "--repo", str(offsite), env=env)
    assert lost.returncode == 1 and "manifests/000000000008" in lost.stderr


CHAIN_OPS = st.lists(st.sampled_from(("backup", "sign", "checkpoint", "prune")), min_size=1, max_size=12)


@settings(max_examples=15, derandomize=True, deadline=None)
@given(ops=CHAIN_OPS, attack=st.sampled_from(("none", "drop", "tamper")), pick=st.integers(0, 50))
def test_whatever_was_pruned_the_window_verifies_and_each_of_its_links_is_still_guarded(
    tmp_path_factory: pytest.TempPathFactory, ops: list[str], attack: str, pick: int
) -> None:
    """Random backups, signatures, checkpoints and link pruning (prune's checkpoint, then its
    removal with every link old enough): the chain verifies, nothing its verification reads was
    removed, and a link of that window dropped or tampered with is still named."""
    made = _model_primary(tmp_path_factory.mktemp("pruned"))
    with made.session:
        for op in ops:
            if op == "backup":
                made.backup()
            elif op == "sign":
                made.sign()
            elif op == "checkpoint":
                made.sign(checkpoint=True)
            else:
                head = made.sign(checkpoint=True)
                _age_links(made.root / "repo")
                removed = remove_old_links(made.backend, head, datetime.now(UTC))
                event("links removed" if removed else "nothing to remove")
        window = made.window()
        stored = set(_links(made.root / "repo"))
        assert window <= stored  # nothing a verification reads was removed
        target = sorted(window)[pick % len(window)]
        if attack == "drop":
            made.backend.remove(link_key(target))
        elif attack == "tamper":
            raw = made.backend.load(link_key(target))
            made.backend.save(link_key(target), raw.replace(b'"signature"', b'"signaturf"'))
        report = made.verify()
        if attack == "none":
            assert not [p for p in report.problems if p.kind == "manifest"], report.problems
            assert report.snapshots_signed == len(made.signed)
            assert report.ok == (made.present == made.signed)  # a backup not signed yet is named
        else:
            _one_manifest_line(report, link_key(target))
