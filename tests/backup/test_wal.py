"""WAL archiving into the repository, against a real PostgreSQL whose archive_command is bcpctl."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.walarchive import WalConflict, archived_names, get, push
from backup.walseq import gaps, parse_segment, segment_name
from dc.errors import UsageError
from storage.local import LEFTOVER_AGE, LocalBackend
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), v text)")
        yield made


def _switch(site: WalSite, rows: int = 100) -> str:
    """Write rows, switch to a new segment; return the name of the segment just finished."""
    site.sql("INSERT INTO juki (v) SELECT md5(g::text) FROM generate_series(1, %s) g", (rows,))
    return str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])


def _archived(site: WalSite, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = site.sql("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")[0]
        if last[0] is not None and last[0] >= name:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not archived; archiver says {last}")


def _names(site: WalSite) -> dict[str, list[str]]:
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        return archived_names(repo, SYSTEM)


def test_archive_command_stores_segments_encrypted_and_get_returns_them(site: WalSite, tmp_path: Path) -> None:
    name = _switch(site)
    _archived(site, name)
    names = _names(site)
    assert name in names
    stored = (site.repo / names[name][0]).read_bytes()
    original = (site.cluster.datadir / "pg_wal" / name).read_bytes()
    assert original[:4096] not in stored and len(stored) < len(original)  # encrypted, compressed
    out = tmp_path / "restored"
    cli_env = site.relay.env
    from tests.conftest import Cli

    got = Cli(cli_env)("wal", "get", name, str(out), "--system", SYSTEM, "--json")
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == original
    assert json.loads(got.stdout)["sha256"]
    missing = Cli(cli_env)("wal", "get", "0000000100000000000000FF", str(tmp_path / "x"), "--system", SYSTEM)
    assert missing.returncode == 1 and "not in the archive" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_same_bytes_again_succeed_other_bytes_refused_and_history_kept(site: WalSite, tmp_path: Path) -> None:
    name = _switch(site)
    _archived(site, name)
    wal = site.cluster.datadir / "pg_wal" / name
    cli = Cli(site.relay.env)
    again = cli("wal", "push", str(wal), "--system", SYSTEM, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_archived"] is True
    before = sorted(p.read_bytes() for p in site.repo.rglob("*") if p.is_file() and "wal" in p.parts)
    forged = tmp_path / name
    forged.write_bytes(b"\x01" + wal.read_bytes()[1:])
    refused = cli("wal", "push", str(forged), "--system", SYSTEM)
    assert refused.returncode == 1
    assert "already archived with other content" in refused.stderr
    after = sorted(p.read_bytes() for p in site.repo.rglob("*") if p.is_file() and "wal" in p.parts)
    assert after == before  # nothing written, nothing replaced
    out = tmp_path / "back"
    assert cli("wal", "get", name, str(out), "--system", SYSTEM).returncode == 0
    assert out.read_bytes() == wal.read_bytes()


@pytest.mark.parametrize("bad", ["../../etc/passwd", "000000010000000000000001/../x", "pg_hba.conf", ""])
def test_push_refuses_what_is_not_a_wal_file_name(site: WalSite, tmp_path: Path, bad: str) -> None:
    path = tmp_path / (bad.replace("/", "_") or "empty")
    path.write_bytes(b"x")
    result = Cli(site.relay.env)("wal", "get", bad or "-", str(path), "--system", SYSTEM)
    assert result.returncode == 2, result.stderr
    assert "is not a WAL file name" in result.stderr


def test_a_killed_push_leaves_no_object_and_postgres_retries(site: WalSite) -> None:
    """SIGKILL in the middle of writing the object: nothing half-stored, PostgreSQL not told 'archived'."""
    # the failpoint SIGKILLs bcpctl with half the object written under its temporary name
    site.relay.extra = {"BCPCTL_FAILPOINTS": "storage.save.mid-object"}
    site.sql("INSERT INTO juki (v) SELECT md5(g::text) FROM generate_series(1, 1000) g")
    name = str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while not any(p.returncode == -signal.SIGKILL for p in site.relay.procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(p.returncode == -signal.SIGKILL for p in site.relay.procs)
    stats = site.sql("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")[0]
    assert stats[0] is None or stats[0] < name  # PostgreSQL does not believe it archived
    assert name not in _names(site)  # and no object is listed for it
    site.relay.extra = {}
    _archived(site, name)  # the retry stores it whole
    pushed = [call[1] for call in site.relay.calls if call[0] == "push"]
    assert any(pushed.count(path) >= 2 for path in pushed)  # the killed push was tried again
    out = site.base / "check.wal"
    assert Cli(site.relay.env)("wal", "get", name, str(out), "--system", SYSTEM).returncode == 0
    assert out.read_bytes() == (site.cluster.datadir / "pg_wal" / name).read_bytes()
    # the killed push's temporary is still there, unlisted; once old, the next push of it removes it
    (left,) = site.repo.rglob(".*.tmp-*")
    old = time.time() - 2 * LEFTOVER_AGE
    os.utime(left, (old, old))
    again = site.base / name
    out.rename(again)
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        assert push(repo, SYSTEM, again).already_archived
    assert not list(site.repo.rglob(".*.tmp-*"))


def test_base_backup_check_and_a_gap_named(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    _archived(site, _switch(site))
    backed = cli("backup", "run", "--config", str(site.config), "--json")
    assert backed.returncode == 0, backed.stderr
    result = json.loads(backed.stdout)["backups"][0]["result"]
    assert result["source"].startswith("postgres-wal:") and result["bytes_read"] > 1 << 20
    names = [_switch(site) for _ in range(4)]
    _archived(site, names[-1])
    checked = cli("check", "--repo", str(site.repo), "--password-file", str(site.base / "password"), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # remove one segment in the middle: check names it
    victim = names[1]
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        for key in archived_names(repo, SYSTEM)[victim]:
            repo.backend.remove(key)
    checked = cli("check", "--repo", str(site.repo), "--password-file", str(site.base / "password"))
    assert checked.returncode == 1
    assert f"WAL archive of {SYSTEM}: 1 segment(s) missing on timeline 1: {victim}" in checked.stdout + checked.stderr


def test_gaps_are_found_between_neighbours_per_timeline() -> None:
    names = [segment_name(1, n) for n in (3, 4, 7, 300)] + [segment_name(2, n) for n in (5, 6)]
    found = gaps(names)
    assert [(g.timeline, g.first, g.last, g.count) for g in found] == [
        (1, segment_name(1, 5), segment_name(1, 6), 2),
        (1, segment_name(1, 8), segment_name(1, 299), 292),
    ]
    assert parse_segment(segment_name(1, 300)).segno == 300
    far = gaps([segment_name(1, 1), "0000000100FFFFFF000000FF"])  # one planted name far ahead: instant
    assert far[0].count > 1_000_000


def test_library_push_is_idempotent_and_refuses_overwrite(site: WalSite, tmp_path: Path) -> None:
    wal = tmp_path / "000000010000000000000042"
    wal.write_bytes(os.urandom(1 << 16))
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        first = push(repo, "other", wal)
        second = push(repo, "other", wal)
        assert not first.already_archived and second.already_archived and first.key == second.key
        wal.write_bytes(os.urandom(1 << 16))
        with pytest.raises(WalConflict):
            push(repo, "other", wal)
        with pytest.raises(UsageError):
            push(repo, "../other", wal)
        with pytest.raises(Exception, match="not in the archive"):
            get(repo, SYSTEM, wal.name, tmp_path / "out")  # another system's WAL is not this one's


def test_forget_keeps_the_wal_the_oldest_kept_base_needs_and_removes_older(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    password = ["--password-file", str(site.base / "password")]
    first = [_switch(site) for _ in range(2)]
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    between = [_switch(site) for _ in range(2)]
    second = cli("backup", "run", "--config", str(site.config), "--json")
    assert second.returncode == 0
    after = [_switch(site) for _ in range(2)]
    _archived(site, after[-1])
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        from backup.snapshot import list_snapshots
        from backup.walcheck import first_needed

        newest = list_snapshots(repo, system=SYSTEM)[-1]
        needed = first_needed(newest)
        keep_from = segment_name(needed.timeline, needed.segno)
    dry = cli("forget", "--repo", str(site.repo), *password, "--keep-last", "1", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["wal"][0]
    assert planned["keep_from"] == keep_from and set(first + between[:1]) <= set(planned["removed"])
    assert set(first) <= set(_names(site))  # a dry run removes nothing
    done = cli("forget", "--repo", str(site.repo), *password, "--keep-last", "1", "--json")
    assert done.returncode == 0, done.stderr
    left = _names(site)
    assert not set(planned["removed"]) & set(left)
    assert all(name in left for name in after) and keep_from in left
    assert all(n >= keep_from for n in left if not n.endswith(".history"))
    checked = cli("check", "--repo", str(site.repo), *password)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # no gap: what is gone was not needed


def test_wal_commands_refuse_a_system_that_does_not_archive_wal(site: WalSite, tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    config["systems"]["goka-files"] = {
        "tenant": "goka", "business": "文書", "tier": 3, "source": {"kind": "path", "path": str(tmp_path)},
    }  # fmt: skip
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    wal = tmp_path / "000000010000000000000009"
    wal.write_bytes(b"x" * 1024)
    cli = Cli(site.relay.env)
    for args in (["push", str(wal)], ["get", wal.name, str(tmp_path / "out")]):
        refused = cli("wal", *args, "--system", "goka-files", "--config", str(other))
        assert refused.returncode == 2 and "not postgres-wal" in refused.stderr
    unknown = cli("wal", "push", str(wal), "--system", "nobody", "--config", str(other))
    assert unknown.returncode == 2 and "unknown system" in unknown.stderr
    assert not any(p.is_file() for p in (site.repo / "wal").rglob("*") if "goka-files" in p.parts)
