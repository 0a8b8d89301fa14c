"""A long-running process (``serve``'s key ring) keeps its repositories' cache between jobs; an
index file another machine writes between two jobs must be known to the second job, and one
another machine deletes must be forgotten by it — a blob believed present when its index (and
pack) is gone would be left out of the next backup: data loss. These pin what any cheaper
listing of ``index/`` must keep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backup.index import INDEX_PREFIX
from backup.keyring import KeyRing
from storage.local import LocalBackend
from tests.backup.conftest import make_tree
from tests.conftest import PASSWORD

_OTHER_MACHINE = """
import sys
from pathlib import Path
from backup.opening import open_repository
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from storage.local import LocalBackend
with open_repository(LocalBackend(Path(sys.argv[1])), sys.argv[3]) as repo:
    run_backup(repo, BackupRequest(parse_source("path:" + sys.argv[2]), system="other"))
"""


def _cached_indexes(ring: KeyRing, repo_dir: Path) -> set[str]:
    with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
        return {row[0] for row in repo.cache.connection().execute("SELECT name FROM index_files")}


def _listed(repo_dir: Path) -> set[str]:
    return {i.key.removeprefix(INDEX_PREFIX) for i in LocalBackend(repo_dir).list(INDEX_PREFIX)}


def test_the_next_job_sees_index_files_written_and_deleted_elsewhere(repo_dir: Path, tmp_path: Path) -> None:
    ring = KeyRing(sign_every=3600)
    try:
        before = _cached_indexes(ring, repo_dir)
        assert before == _listed(repo_dir)
        for n in range(3):  # several, so that new names fall before and after the known ones
            src = make_tree(tmp_path / f"src{n}", {"a.txt": f"only the other machine has this {n}\n" * 50})
            env = {**os.environ, "BCPCTL_CACHE_DIR": str(tmp_path / "other-cache"), "PYTHONPATH": os.getcwd()}
            args = [sys.executable, "-c", _OTHER_MACHINE, str(repo_dir), str(src), PASSWORD]
            subprocess.run(args, env=env, check=True, timeout=120)
            listed = _listed(repo_dir)
            assert len(listed) > len(before)
            assert _cached_indexes(ring, repo_dir) == listed
            before = listed
        gone = sorted(before)[len(before) // 2]
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            blobs = {e.id for pack in repo.load_index(gone).packs for e in pack.entries}
            others = {e.id for name in before - {gone} for pack in repo.load_index(name).packs for e in pack.entries}
        only_there = blobs - others
        assert only_there
        LocalBackend(repo_dir).remove(INDEX_PREFIX + gone)  # as prune elsewhere does, after repacking
        assert _cached_indexes(ring, repo_dir) == _listed(repo_dir)
        with ring.open(LocalBackend(repo_dir), PASSWORD) as repo:
            assert not repo.cache.locations_of(only_there)  # never believed present: no data loss
    finally:
        ring.close()
