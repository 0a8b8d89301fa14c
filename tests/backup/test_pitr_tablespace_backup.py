"""A cluster with tablespaces outside its data directory is backed up whole and restored under
the target, against real PostgreSQL.

The primary's tablespace directories sit on the same host as every restore (a shared host,
the worst case): each restore must leave them exactly as they were, bit for bit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.baserecord import TAG_TABLESPACES
from backup.snapshot import list_snapshots
from dc.clock import JST
from tests.backup.test_pitr import _archived_past, _write_rows
from tests.backup.test_pitr_tablespace import _postgres_dir, _stop_primary, tree_state
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    """Two tablespaces outside the data directory, a table with rows in each, before any backup."""
    with wal_site(cli.env) as made:
        for name in ("juki_space", "zei_space"):
            location = _postgres_dir(made.base / name, made.cluster.owner)
            made.sql(f"CREATE TABLESPACE {name} LOCATION '{location}'")
        made.sql(
            "CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text) "
            "TABLESPACE juki_space"
        )
        made.sql("CREATE TABLE zei (id int) TABLESPACE zei_space")
        made.sql("INSERT INTO zei SELECT generate_series(1, 500)")
        yield made


def _spaces(site: WalSite) -> dict[str, tuple[int, Path]]:
    rows = site.sql("SELECT spcname, oid, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname LIKE '%_space'")
    return {str(name): (int(oid), Path(location)) for name, oid, location in rows}


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def test_a_cluster_with_tablespaces_is_restored_to_a_time_under_the_target(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    spaces = _spaces(site)
    backed = cli("backup", "run", "--config", str(site.config), "--json")
    assert backed.returncode == 0, backed.stderr
    rows = _write_rows(site, 2)
    site.sql("INSERT INTO zei SELECT generate_series(501, 800)")
    middle = len(rows) // 2
    target = rows[middle][1] + (rows[middle + 1][1] - rows[middle][1]) / 2
    _archived_past(site)

    # the snapshot records each tablespace's OID, name and the primary's location, and holds its tar
    from backup.opening import open_repository
    from storage.local import LocalBackend

    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        (base,) = list_snapshots(repo, system=SYSTEM)
    recorded = {s["name"]: (s["oid"], Path(s["location"])) for s in json.loads(base.tags[TAG_TABLESPACES])}
    assert recorded == spaces

    site.sql("CHECKPOINT")
    _stop_primary(site)
    untouched = {name: tree_state(location) for name, (_, location) in spaces.items()}
    assert all(len(state) > 3 for state in untouched.values())

    text = target.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S.%f JST")
    restored = site.base / "restored"
    done = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-time", text,
        "--target-dir", str(restored), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)["tables"]
    assert tables["public.juki"] == len([r for r in rows if r[1] <= target])
    assert tables["public.zei"] == 500  # the second insert came after the target
    for _name, (oid, location) in spaces.items():
        link = restored / "pg_tblspc" / str(oid)
        assert link.is_symlink() and _inside(link, restored), os.readlink(link)
        assert any(Path(os.path.realpath(link)).glob("PG_*/*/*"))  # the relation files are there
        # PostgreSQL renames the map it followed
        assert str(restored / "pg_tblspc_data" / str(oid)) in (restored / "tablespace_map.old").read_text()
        assert str(location) not in (restored / "tablespace_map.old").read_text()
    assert {name: tree_state(location) for name, (_, location) in spaces.items()} == untouched

    # mapped elsewhere beside the target, by name and by OID: the files land there
    (juki_oid, juki_location), (zei_oid, _) = spaces["juki_space"], spaces["zei_space"]
    mapped = site.base / "mapped"
    remap = {juki_oid: site.base / "disk2" / "juki", zei_oid: site.base / "zei-empty"}
    remap[zei_oid].mkdir()  # an existing empty directory is taken
    latest = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(mapped),
        "--tablespace-map", f"juki_space={remap[juki_oid]}", "--tablespace-map", f"{zei_oid}={remap[zei_oid]}",
        "--json",
    )  # fmt: skip
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["tables"] == {"public.juki": len(rows), "public.zei": 800}
    assert json.loads(latest.stdout)["tablespaces"] == {str(oid): str(where) for oid, where in remap.items()}
    for oid, where in remap.items():
        assert os.readlink(mapped / "pg_tblspc" / str(oid)) == str(where)
        assert any(where.glob("PG_*/*/*"))
    assert not (mapped / "pg_tblspc_data").exists()
    assert {name: tree_state(location) for name, (_, location) in spaces.items()} == untouched

    # traps planted in the remap targets: each refused in one line (exit 2) before anything is written
    full = site.base / "full"
    full.mkdir()
    (full / "resident.csv").write_text("x")
    (site.base / "link-to-primary").symlink_to(juki_location)
    (site.base / "link-out").symlink_to("/var/tmp")
    other_cluster = site.base / "other-cluster"
    other_cluster.mkdir()
    (other_cluster / "PG_VERSION").write_text("15\n")
    fresh = f"bcpctl-remap-{os.getpid()}"
    trapped = site.base / "trapped"
    traps = {
        "outside": f"juki_space=/var/tmp/{fresh}",
        "through a link leaving the area": f"juki_space={site.base / 'link-out' / fresh}",
        "the primary's own location": f"juki_space={juki_location}",
        "inside the primary's location": f"juki_space={juki_location / 'new'}",
        "a link to the primary's location": f"juki_space={site.base / 'link-to-primary'}",
        "below a link to the primary's location": f"juki_space={site.base / 'link-to-primary' / 'new'}",
        "a non-empty directory": f"juki_space={full}",
        "a file": f"juki_space={full / 'resident.csv'}",
        "inside the target": f"juki_space={trapped / 'ts'}",
        "inside another cluster": f"juki_space={other_cluster / 'ts'}",
        "the allowed area itself": f"juki_space={site.base}",
        "relative": "juki_space=relative/ts",
        "with ..": f"juki_space={site.base}/x/../y",
        "no such tablespace": f"kokuho_space={site.base / 'y'}",
        "no path": "juki_space=",
    }
    for what, mapping in traps.items():
        refused = cli(
            "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(trapped),
            "--tablespace-map", mapping,
        )  # fmt: skip
        assert refused.returncode == 2, (what, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and "--tablespace-map" in refused.stderr, (what, refused)
        assert not trapped.exists(), what
    two = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(trapped),
        "--tablespace-map", f"juki_space={site.base / 'a'}", "--tablespace-map", f"{zei_oid}={site.base / 'a' / 'b'}",
    )  # fmt: skip
    assert two.returncode == 2 and "two tablespaces" in two.stderr, two.stderr
    assert not Path("/var/tmp", fresh).exists() and not trapped.exists()
    assert (full / "resident.csv").read_text() == "x" and sorted(full.iterdir()) == [full / "resident.csv"]
    assert {name: tree_state(location) for name, (_, location) in spaces.items()} == untouched


def test_a_killed_base_backups_scratch_copy_is_removed_by_the_next_one(site: WalSite) -> None:
    """The scratch holds a plaintext copy of the database: a backup killed with it full leaves it
    only until the next base backup, which sweeps it before taking its own."""
    from backup.pitrscratch import PREFIX

    cli = Cli(site.relay.env)
    tmp = site.base / "tmp"
    tmp.mkdir(mode=0o755)
    killed = cli(
        "backup", "run", "--config", str(site.config),
        env={"TMPDIR": str(tmp), "BCPCTL_FAILPOINTS": "basebackup.spooled"},
    )  # fmt: skip
    assert killed.returncode != 0
    (scratch,) = tmp.iterdir()
    assert scratch.name.startswith(PREFIX) and (scratch / "base" / "base.tar").is_file()
    assert scratch.stat().st_mode & 0o077 == 0
    again = cli("backup", "run", "--config", str(site.config), "--json", env={"TMPDIR": str(tmp)})
    assert again.returncode == 0, again.stderr
    assert list(tmp.iterdir()) == []
