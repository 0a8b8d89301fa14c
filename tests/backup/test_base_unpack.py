"""A base backup's tablespaces on unpack: placed where the restore says, whatever the snapshot claims.

The snapshots here are forged (a path backup of hand-made tars, tags chosen by the attacker):
whoever can write to the repository can write one, and a restore must still never follow a
path it names.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup.archiver import store_stream
from backup.baserecord import TAG_TABLESPACES
from backup.errors import CorruptObject, HostileSnapshot
from backup.pgcluster import unpack_base
from backup.repository import Repository
from backup.snapshot import Snapshot, save_snapshot
from backup.tablespacemap import DEFAULT_DIR
from backup.tree import TreeWriter
from backup.writer import BlobWriter


def _tar(members: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    """A tar of files (bytes) and directories (None), in order, plus symlinks."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.mode = 0o700 if data is None else 0o600
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def _base(mapping: str | None, extra: dict[str, bytes | None] | None = None) -> bytes:
    members: dict[str, bytes | None] = {"backup_label": b"START WAL LOCATION: 0/2000028 (file x)\n"}
    if mapping is not None:
        members["tablespace_map"] = mapping.encode()
    members |= {"PG_VERSION": b"15\n", "pg_tblspc": None, "base": None} | (extra or {})
    return _tar(members)


def _snapshot(repo: Repository, files: dict[str, bytes], spaces: list[dict[str, object]] | None) -> Snapshot:
    """A base backup snapshot of these streams, written with the same pieces a backup uses."""
    writer = BlobWriter(repo)
    tree = TreeWriter(writer.add_tree, repo.master.chunker_seed)
    try:
        for name, data in sorted(files.items()):
            sha, ids, size = store_stream(repo, writer, io.BytesIO(data))
            tree.add(
                {"path": name, "type": "file", "mode": 0o600, "mtime": 0, "size": size, "sha256": sha, "chunks": ids}
            )
        tree_ids = tree.finish()
        writer.flush()
    finally:
        writer.close()
    tags = {TAG_TABLESPACES: json.dumps(spaces)} if spaces is not None else {}
    return save_snapshot(
        repo,
        Snapshot(datetime.now(UTC), "h", "u", "postgres-wal", "x", tree_ids, system="goka-juki", tags=tags),
    )


_SPACE = _tar({"PG_15_202209061": None, "PG_15_202209061/5": None, "PG_15_202209061/5/16500": b"rows" * 100})


def test_recorded_tablespaces_are_placed_under_the_target_and_linked(repo: Repository, tmp_path: Path) -> None:
    primary = tmp_path / "primary-space"
    snap = _snapshot(
        repo, {"base.tar": _base(f"16400 {primary}\n"), "tablespace-16400.tar": _SPACE},
        [{"oid": 16400, "name": "juki_space", "location": str(primary)}],
    )  # fmt: skip
    target = tmp_path / "target"
    assert unpack_base(repo, snap, target) > 0
    where = target / DEFAULT_DIR / "16400"
    assert os.readlink(target / "pg_tblspc" / "16400") == str(where)
    assert (where / "PG_15_202209061" / "5" / "16500").read_bytes() == b"rows" * 100
    assert (target / "tablespace_map").read_text() == f"16400 {where}\n"
    assert not primary.exists()


@pytest.mark.parametrize(
    ("mapping", "planted", "tars", "spaces", "error"),
    [
        # a map naming the primary's path, nothing recorded (as a base backup before tablespaces were kept)
        ("16400 {primary}\n", False, [], [], HostileSnapshot),
        # the map names another OID than the one recorded and stored
        ("16401 {primary}\n", False, [16400], [16400], HostileSnapshot),
        # the map names two, one recorded
        ("16400 /a\n16401 {primary}\n", False, [16400], [16400], HostileSnapshot),
        # a recorded tablespace without its tar, or a tar nobody recorded
        ("16400 {primary}\n", False, [], [16400], CorruptObject),
        (None, False, [16400], [], CorruptObject),
        # the base plants pg_tblspc/<oid> itself
        ("16400 {primary}\n", True, [16400], [16400], HostileSnapshot),
    ],
)
def test_a_forged_base_backup_never_writes_at_the_path_it_names(
    repo: Repository,
    tmp_path: Path,
    mapping: str | None,
    planted: bool,
    tars: list[int],
    spaces: list[int],
    error: type[Exception],
) -> None:
    primary = tmp_path / "primary-space"
    extra: dict[str, bytes | None] = {"pg_tblspc/16400": b"x"} if planted else {}
    files = {"base.tar": _base(mapping.format(primary=primary) if mapping else None, extra)}
    files |= {f"tablespace-{oid}.tar": _SPACE for oid in tars}
    records = [{"oid": oid, "name": "juki_space", "location": str(primary)} for oid in spaces] if spaces else None
    snap = _snapshot(repo, files, records)
    with pytest.raises(error):
        unpack_base(repo, snap, tmp_path / "target")
    assert not primary.exists()
    assert not (tmp_path / "target" / "pg_tblspc" / "16400").is_symlink()


def test_a_tablespace_record_that_does_not_parse_is_corrupt(repo: Repository, tmp_path: Path) -> None:
    snap = _snapshot(repo, {"base.tar": _base(None)}, None)
    for raw in ("[]", "{", '[{"oid": 0, "name": "", "location": "/x"}]', '[{"oid": 1}]'):
        forged = Snapshot(**{**vars(snap), "tags": {TAG_TABLESPACES: raw}})
        with pytest.raises(CorruptObject, match="records its tablespaces unreadably"):
            unpack_base(repo, forged, tmp_path / f"target-{len(raw)}")
