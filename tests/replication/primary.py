"""Building real primary repositories for replication tests: init, back up, sign.

Everything goes through the real backup code (chunking, packs, index, snapshot) with a
small KDF and small packs so a test repository takes well under a second.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from backup.manifest import Manifest, read_manifest, sign_manifest
from backup.opening import init_repository, open_repository
from backup.repository import ChunkerParams
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.backend import Backend
from tests.conftest import PASSWORD

FAST_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}
SMALL_CHUNKS = ChunkerParams(avg=64 * 1024, min=16 * 1024, max=256 * 1024)


def write_tree(root: Path, *, files: int = 8, size: int = 200_000, seed: int = 1) -> Path:
    """Incompressible files, so packs have real sizes."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        (root / f"file-{n:03d}.bin").write_bytes(rng.randbytes(size))
    return root


def init(backend: Backend, *, pack_size: int = 256 * 1024, manifest_format: int = 2) -> str:
    return init_repository(
        backend, PASSWORD, chunker=SMALL_CHUNKS, pack_size=pack_size, kdf=FAST_KDF, manifest_format=manifest_format
    ).id


def signed_state(backend: Backend, repo_id: str) -> Manifest:
    """The whole state the stored manifest signs (a format-2 signature returns its link, a delta)."""
    found = read_manifest(backend, public_key=None, repo_id=repo_id)
    assert found is not None
    return found


def backup(
    backend: Backend, source: Path, *, system: str = "goka-juki", sign: bool = True
) -> tuple[str, Manifest | None]:
    """One snapshot of ``source``; returns its id and (if signed) the new manifest."""
    with open_repository(backend, PASSWORD, sign_on_close=sign) as repo:
        result = run_backup(repo, BackupRequest(parse_source(f"path:{source}"), system=system, tenant="goka"))
        if sign:
            sign_manifest(repo)
    return result.snapshot_id, signed_state(backend, repo.config.id) if sign else None


def sign(backend: Backend) -> Manifest:
    with open_repository(backend, PASSWORD) as repo:
        sign_manifest(repo)
    return signed_state(backend, repo.config.id)


def forget(backend: Backend, snapshot_id: str) -> Manifest:
    """What ``forget`` does to one snapshot: sign its removal, then remove it."""
    with open_repository(backend, PASSWORD, sign_on_close=False) as repo:
        sign_manifest(repo, without=frozenset({snapshot_id}))
        repo_id = repo.config.id
    backend.remove(f"snapshots/{snapshot_id}")
    return signed_state(backend, repo_id)


def mutate(root: Path, *, fraction: float = 0.25, seed: int = 2) -> None:
    rng = random.Random(seed)
    files = sorted(root.iterdir())
    for path in files[: max(1, int(len(files) * fraction))]:
        data = bytearray(path.read_bytes())
        data[:50_000] = rng.randbytes(50_000)
        path.write_bytes(bytes(data))
    (root / f"new-{seed}.bin").write_bytes(os.urandom(100_000))
