"""Hostile ``--tablespace-map`` paths through the CLI, against real PostgreSQL.

PostgreSQL re-creates each ``pg_tblspc`` link from ``tablespace_map`` when it starts: a path
that the map escapes wrongly, or cannot hold, would have it link (and write) elsewhere. The
primary's tablespaces and a canary tree sit beside the restore; neither may change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.backup.test_pitr import _archived_past
from tests.backup.test_pitr_tablespace import _stop_primary, tree_state
from tests.backup.test_pitr_tablespace_backup import _spaces
from tests.backup.test_pitr_tablespace_backup import site as site  # the fixture
from tests.backup.walsite import SYSTEM, WalSite
from tests.conftest import Cli

pytestmark = pytest.mark.postgres


def _backed_up_and_stopped(site: WalSite) -> tuple[Cli, dict[str, object]]:
    """A base backup, everything archived, the primary stopped; the state nothing may change."""
    locations = [location for _, location in _spaces(site).values()]
    cli = Cli(site.relay.env)
    backed = cli("backup", "run", "--config", str(site.config), "--json")
    assert backed.returncode == 0, backed.stderr
    _archived_past(site)
    site.sql("CHECKPOINT")
    _stop_primary(site)
    canary = site.base / "canary"
    canary.mkdir()
    (canary / "resident.csv").write_text("1,山田\n")
    return cli, _state([*locations, canary])


def _state(roots: list[Path]) -> dict[str, object]:
    return {str(root): tree_state(root) for root in roots}


def test_a_mapped_path_with_a_backslash_and_spaces_is_where_postgresql_links_it(site: WalSite) -> None:
    """``tablespace_map`` escapes a backslash; PostgreSQL unescapes it when it re-links."""
    spaces = _spaces(site)
    cli, untouched = _backed_up_and_stopped(site)
    juki_oid, _ = spaces["juki_space"]
    where = site.base / "disk 2" / "juki\\space  x"
    restored = site.base / "restored"
    done = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(restored),
        "--tablespace-map", f"juki_space={where}", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tablespaces"][str(juki_oid)] == str(where)
    assert json.loads(done.stdout)["tables"]["public.zei"] == 500
    assert os.readlink(restored / "pg_tblspc" / str(juki_oid)) == str(where)
    assert any(where.glob("PG_*/*/*"))
    assert not (site.base / "disk 2" / "juki").exists() and not (site.base / "juki").exists()
    assert _state([Path(p) for p in untouched]) == untouched


def test_a_mapped_path_that_is_not_utf8_is_restored_there_or_refused_in_one_line(site: WalSite) -> None:
    spaces = _spaces(site)
    cli, untouched = _backed_up_and_stopped(site)
    juki_oid, _ = spaces["juki_space"]
    where = site.base / os.fsdecode(b"juki-\xff\xfe")
    restored = site.base / "restored"
    done = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(restored),
        "--tablespace-map", f"juki_space={where}", "--json",
    )  # fmt: skip
    assert "internal error" not in done.stderr, done.stderr
    if done.returncode == 0:
        assert os.readlink(restored / "pg_tblspc" / str(juki_oid)) == str(where)
        assert any(where.glob("PG_*/*/*"))
    else:
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not restored.exists(), done.stderr
    assert _state([Path(p) for p in untouched]) == untouched


def test_a_mapped_path_under_a_file_is_refused_in_one_line_before_anything_is_written(site: WalSite) -> None:
    cli, untouched = _backed_up_and_stopped(site)
    restored = site.base / "restored"
    done = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(restored),
        "--tablespace-map", f"juki_space={site.base / 'canary' / 'resident.csv' / 'ts'}",
    )  # fmt: skip
    assert _state([Path(p) for p in untouched]) == untouched
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not restored.exists(), done.stderr


def test_a_target_inside_the_primarys_tablespace_is_refused_in_one_line(site: WalSite) -> None:
    _, juki_location = _spaces(site)["juki_space"]
    cli, untouched = _backed_up_and_stopped(site)
    done = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest",
        "--target-dir", str(juki_location / "restored"),
    )  # fmt: skip
    assert _state([Path(p) for p in untouched]) == untouched, done.stderr
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_full_or_read_only_mapped_disk_is_one_line_and_changes_nothing_outside(site: WalSite) -> None:
    """ENOSPC and EROFS where a tablespace is mapped: a tiny tmpfs is a real full disk, a
    read-only bind mount a real read-only one."""
    import subprocess

    cli, untouched = _backed_up_and_stopped(site)
    small, frozen = site.base / "small", site.base / "frozen"
    small.mkdir()
    frozen.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)], check=True)
    subprocess.run(["mount", "--bind", str(frozen), str(frozen)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(frozen)], check=True)
    try:
        for where in (small / "zei", frozen / "zei"):
            restored = site.base / f"restored-{where.parent.name}"
            done = cli(
                "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(restored),
                "--tablespace-map", f"zei_space={where}",
            )  # fmt: skip
            assert done.returncode in (1, 2) and len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
            assert str(where.parent) in done.stderr or "space" in done.stderr, done.stderr
            assert _state([Path(p) for p in untouched]) == untouched
    finally:
        subprocess.run(["umount", str(small)], check=True)
        subprocess.run(["umount", str(frozen)], check=True)
