"""Reading the manifest while a new signature replaces it: the reader gets one whole manifest.

A reader stats the manifest, then reads that many bytes. A signature stored in between is
read instead of the old one: when it is shorter the read comes up short, when it is longer the
read returns only its first bytes, which ``check`` beside a forget or prune reported as a
"malformed or truncated" manifest. Here the replacement lands exactly between the two steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.check import check_repository
from backup.manifest import MANIFEST_KEY, load_manifest_bytes
from backup.opening import init_repository, open_repository
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD


class _ReplacedOnRead(LocalBackend):
    """The first read of the manifest is preceded by ``replace()`` (a new signature landing)."""

    def __init__(self, root: Path, replace: Callable[[], None] | None) -> None:
        super().__init__(root)
        self.replace = replace
        self.replaced = False

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if key == MANIFEST_KEY and not self.replaced and self.replace is not None:
            self.replaced = True
            self.replace()
        return super().load(key, offset, length)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(old=st.binary(min_size=1, max_size=300), new=st.binary(min_size=1, max_size=300))
def test_a_signature_landing_between_stat_and_read_is_read_whole(
    tmp_path_factory: pytest.TempPathFactory, old: bytes, new: bytes
) -> None:
    """Whatever the two sizes, the reader returns the new manifest whole, never a prefix."""
    root = tmp_path_factory.mktemp("m")
    LocalBackend(root, create=True).save(MANIFEST_KEY, old)
    backend = _ReplacedOnRead(root, lambda: LocalBackend(root).save(MANIFEST_KEY, new))
    assert load_manifest_bytes(backend) == new
    assert backend.replaced


@pytest.mark.parametrize("manifest_format", [1, 2])
def test_check_reading_the_manifest_as_a_backup_signs_a_longer_one_reports_nothing(
    tmp_path: Path, manifest_format: int
) -> None:
    """A backup signs another manifest (format 1: a longer one, one more snapshot; format 2: the
    next link) right between check's stat and read of it."""
    repo_dir = tmp_path / "repo"
    init_repository(LocalBackend(repo_dir, create=True), PASSWORD, kdf=FAST_KDF, manifest_format=manifest_format)
    src = tmp_path / "src"
    src.mkdir()
    for number in range(3):
        (src / f"f{number}").write_bytes(b"x" * 1000 * (number + 1))
        with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
            run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system=f"goka-juki-{number}"))

    def back_up() -> None:
        with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
            run_backup(repo, BackupRequest(parse_source(f"path:{src}"), system="goka-juki-3"))

    storage = _ReplacedOnRead(repo_dir, None)
    with open_repository(storage, PASSWORD) as repo:
        storage.replace = back_up
        before = (repo_dir / MANIFEST_KEY).read_bytes()
        report = check_repository(repo)
    after = (repo_dir / MANIFEST_KEY).read_bytes()
    grew = len(after) > len(before) if manifest_format == 1 else after != before
    assert storage.replaced and grew, "the race did not run as forced"
    assert report.ok, [f"{p.object}: {p.message}" for p in report.problems]
