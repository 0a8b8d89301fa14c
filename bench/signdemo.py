"""``python -m bench.controller --sign-demo N``: the CPU of one manifest signature among N snapshots.

Format 1 (the CLI's way, verifying the stored manifest, and ``serve``'s, remembering it) on a
planted history, then format 2 on a copy of it (:mod:`backup.manifestchain`): the checkpoint
that upgrades it, a signature of a minute's batch of backups, and the offsite's verification.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: plants ``per_system`` snapshots for each system (``bench.controller.plant_history``)
Planter = Callable[..., int]


def sign_demo(
    root: Path, count: int, password: str, plant_history: Planter, rounds: int = 5, *, chain: bool = True
) -> dict[str, float]:
    """CPU of one manifest signature among ``count`` snapshots: as the CLI signs (verifying the
    stored manifest) and as ``serve`` signs (remembering the manifest it stored last)."""
    from backup.manifest import Manifest, encode_signed, sign_manifest, signing_key
    from backup.manifestchain import Link
    from backup.manifestmemo import ManifestMemo
    from backup.opening import init_repository, open_repository
    from backup.snapshot import snapshot_ids
    from storage.local import LocalBackend

    repo_path = root / f"sign-demo-{count}"
    if not (repo_path / "config").exists():
        init_repository(  # format 1: what it measures first; format 2 on a converted copy
            LocalBackend(repo_path, create=True),
            password,
            kdf={"memory_kib": 8192, "iterations": 1, "lanes": 1},
            manifest_format=1,
        )
        plant_history(repo_path, [f"sys{i:04d}" for i in range(1452)], -(-count // 1452), kdf_cache=root / "cache")
    os.environ["BCPCTL_CACHE_DIR"] = str(root / "cache")
    result: dict[str, float] = {}
    with open_repository(LocalBackend(repo_path), password, sign_on_close=False) as repo:
        memo: ManifestMemo[Manifest | Link] = ManifestMemo()
        signed = sign_manifest(repo, memo=memo)
        key = signing_key(repo.master, repo.config.id)
        samples: dict[str, list[float]] = {"cli": [], "serve": []}
        for _ in range(rounds):  # alternated call by call: both see the same load
            for label, with_memo in (("cli", None), ("serve", memo)):
                started = time.process_time()
                signed = sign_manifest(repo, memo=with_memo)
                samples[label].append(time.process_time() - started)
                memo.remember(repo.backend.url, signed)  # as if serve had signed it: the next finds its own
            started = time.process_time()
            snapshot_ids(repo)
            samples.setdefault("listing", []).append(time.process_time() - started)
            started = time.process_time()
            assert isinstance(signed, Manifest)  # format 1 here: the chain is measured on a copy
            encode_signed(signed, key)
            samples.setdefault("encoding", []).append(time.process_time() - started)
        for label, seconds in samples.items():
            result[f"{label}_cpu_seconds_median"] = round(statistics.median(seconds), 4)
        result["snapshots"] = sum(1 for p in (repo_path / "snapshots").rglob("*") if p.is_file())
        result["manifest_bytes"] = (repo_path / "manifest").stat().st_size
    if chain:
        result.update(chain_sign_demo(root, repo_path, count, password, rounds))
    return result


def chain_sign_demo(
    root: Path, repo_path: Path, count: int, password: str, rounds: int, batch: int = 45
) -> dict[str, float]:
    """Format 2 on a copy of the same history: a signature of a minute's batch of ``batch``
    backups (the CLI's way, reading the head, and ``serve``'s, remembering it), the checkpoint
    that upgrades it, and a keyless verification of the chain (the offsite's)."""
    import shutil

    from backup.manifest import Manifest, sign_manifest, verify_manifest
    from backup.manifestchain import Link
    from backup.manifestmemo import ManifestMemo
    from backup.opening import open_repository
    from backup.snapshot import Snapshot, save_snapshot
    from storage.local import LocalBackend

    chain_path = root / f"sign-demo-{count}-chain"
    shutil.rmtree(chain_path, ignore_errors=True)
    shutil.copytree(repo_path, chain_path)
    result: dict[str, float] = {}
    with open_repository(LocalBackend(chain_path), password, sign_on_close=False) as repo:
        started = time.process_time()
        head = sign_manifest(repo, chain=True, checkpoint=True)
        result["chain_checkpoint_cpu_seconds"] = round(time.process_time() - started, 4)
        memo: ManifestMemo[Manifest | Link] = ManifestMemo()
        memo.remember(repo.backend.url, head)
        samples: dict[str, list[float]] = {"cli": [], "serve": []}
        when = datetime(2027, 1, 1, tzinfo=UTC)
        for _ in range(rounds):
            for label, with_memo in (("cli", None), ("serve", memo)):
                for n in range(batch):
                    when += timedelta(seconds=1)
                    snap = Snapshot(when, "h", "u", "path", "/x", ("0" * 64,), system=f"sys{n:04d}")
                    save_snapshot(repo, snap)
                started = time.process_time()
                head = sign_manifest(repo, memo=with_memo)
                samples[label].append(time.process_time() - started)
                memo.remember(repo.backend.url, head)
        for label, seconds in samples.items():
            result[f"chain_{label}_cpu_seconds_median"] = round(statistics.median(seconds), 4)
        result["chain_link_bytes"] = (chain_path / "manifest").stat().st_size
        raw = (chain_path / "manifest").read_bytes()
        started = time.process_time()
        state = verify_manifest(raw, public_key=None, repo_id=None, load=repo.backend.load)
        result["chain_verify_cpu_seconds"] = round(time.process_time() - started, 4)
        result["chain_snapshots_verified"] = len(state.snapshots)
    return result
