"""The restore's WAL feed (backup/walfeed.py) and the spool that ``wal get``/``wal push`` answer from
first (backup/walspool.py): exactly the archived bytes, in replay order, a bounded spool, and
never an answer the archive would not give."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.walarchive import archived_names, push
from backup.walfeed import WalFeed, absent_histories, next_timeline_history, segments_from
from backup.walspool import from_record, from_spool, write_record
from storage.local import LocalBackend
from tests.conftest import PASSWORD, Cli

SYSTEM = "goka-juki"


def _segments(tmp_path: Path, count: int, timeline: int = 1) -> list[Path]:
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir(exist_ok=True)
    made = []
    for i in range(count):
        path = pg_wal / f"{timeline:08X}00000000{i + 1:08X}"
        path.write_bytes(os.urandom(4096) + bytes([i]) * 65536)
        made.append(path)
    return made


def _archive(repo_dir: Path, paths: list[Path]) -> None:
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        for path in paths:
            push(repo, SYSTEM, path)


def _until(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _spooled(spool: Path) -> list[str]:
    """The files waiting in the spool (not temporary ones, not the feed's "absent" marks)."""
    return sorted(p.name for p in spool.iterdir() if not p.name.startswith(".") and not p.name.endswith(".absent"))


def test_replay_takes_every_segment_from_the_feed_in_order_with_the_archived_bytes(
    repo_dir: Path, tmp_path: Path
) -> None:
    paths = _segments(tmp_path, 7)
    _archive(repo_dir, paths)
    spool, out = tmp_path / "spool", tmp_path / "out"
    out.mkdir()
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[2].name, spool, window=3, workers=2) as feed:
            for path in paths[2:]:
                _until(lambda p=path: (spool / p.name).exists())
                got = from_spool(SYSTEM, path.name, out / path.name, spool)
                assert got is not None and got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
                assert (out / path.name).read_bytes() == path.read_bytes()
        assert feed.fetched == [p.name for p in paths[2:]] and feed.problem is None
    assert _spooled(spool) == []  # before the first segment replay needs: never fetched


def test_the_spool_never_holds_more_than_the_window(repo_dir: Path, tmp_path: Path) -> None:
    paths = _segments(tmp_path, 9)
    _archive(repo_dir, paths)
    spool = tmp_path / "spool"
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[0].name, spool, window=4, workers=3) as feed:
            _until(lambda: len(_spooled(spool)) == 4)
            time.sleep(0.5)  # replay is slow: the feed waits instead of filling the disk
            assert _spooled(spool) == [p.name for p in paths[:4]]
            assert from_spool(SYSTEM, paths[0].name, tmp_path / "x", spool) is not None
            _until(lambda: paths[4].name in _spooled(spool))
            time.sleep(0.3)
            assert len(_spooled(spool)) == 4
        assert len(feed.fetched) == 5


def test_a_damaged_segment_stops_the_feed_and_is_left_to_the_archive_to_report(repo_dir: Path, tmp_path: Path) -> None:
    paths = _segments(tmp_path, 4)
    _archive(repo_dir, paths)
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        (key,) = archived_names(repo, SYSTEM)[paths[2].name]
    stored = repo_dir / key
    stored.write_bytes(stored.read_bytes()[:-10] + b"0123456789")
    spool = tmp_path / "spool"
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[0].name, spool, window=8) as feed:
            _until(lambda: feed.problem is not None)
    assert paths[2].name in (feed.problem or "") and "damaged" in (feed.problem or "")
    assert paths[2].name not in _spooled(spool)  # nothing unverified is ever spooled
    assert feed.fetched == [paths[0].name, paths[1].name]


def test_the_next_timeline_history_is_the_first_the_archive_lacks() -> None:
    first = "000000010000000000000003"
    assert next_timeline_history([first], first) == "00000002.history"
    assert next_timeline_history([first, "00000002.history", "00000003.history"], first) == "00000004.history"
    assert next_timeline_history(["00000002.history"], "000000050000000000000001") == "00000006.history"


def test_the_feed_marks_the_next_timeline_history_absent(repo_dir: Path, tmp_path: Path) -> None:
    paths = _segments(tmp_path, 1)
    _archive(repo_dir, paths)
    spool = tmp_path / "spool"
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[0].name, spool) as feed:
            _until(lambda: feed.fetched == [paths[0].name])
    assert (spool / "00000002.history.absent").exists()
    # asked for when the restore promotes (the history it copies into the new timeline): timeline 1 has none
    assert (spool / "00000001.history.absent").exists()


def test_only_history_files_the_archive_lacks_are_marked_absent() -> None:
    on_two = "000000020000000000000003"
    assert absent_histories([on_two, "00000002.history"], on_two) == ["00000003.history"]
    assert absent_histories([on_two], on_two) == ["00000002.history", "00000003.history"]
    assert absent_histories(["00000003.history"], on_two) == ["00000002.history", "00000004.history"]


def test_segments_from_follow_the_first_ones_timeline_in_replay_order() -> None:
    names = ["000000020000000000000003", "000000010000000000000004", "000000010000000000000002",
             "00000002.history", "000000010000000000000003", "000000010000000000000003.partial"]  # fmt: skip
    assert segments_from(names, "000000010000000000000003") == ["000000010000000000000003", "000000010000000000000004"]


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to the server's account needs root")
def test_spooled_files_belong_to_the_server_account_from_the_moment_they_appear(repo_dir: Path, tmp_path: Path) -> None:
    paths = _segments(tmp_path, 2)
    _archive(repo_dir, paths)
    spool = tmp_path / "spool"
    postgres = pwd.getpwnam("postgres")
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[0].name, spool, owner="postgres") as feed:
            _until(lambda: len(feed.fetched) == 2)
    assert spool.stat().st_uid == postgres.pw_uid
    assert {(spool / p.name).stat().st_uid for p in paths} == {postgres.pw_uid}


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as the server's account needs root")
def test_the_server_cannot_list_the_spool_until_it_has_started_yet_takes_its_files(
    repo_dir: Path, tmp_path: Path
) -> None:
    """PostgreSQL's start-up fsyncs every file it can list in its data directory: the segments
    the feed fetched ahead must not be among them, yet restore_command renames them by name."""
    paths = _segments(tmp_path, 6)
    _archive(repo_dir, paths)
    with tempfile.TemporaryDirectory(prefix="bcpctl-test-feed-") as reachable:  # the server's account traverses it
        os.chmod(reachable, 0o755)
        datadir = Path(reachable) / "data"
        datadir.mkdir()
        shutil.chown(datadir, "postgres", "postgres")
        spool = datadir / "spool"

        def as_server(*argv: str) -> int:
            return subprocess.run(
                ["runuser", "-u", "postgres", "--", *argv], cwd=datadir, capture_output=True
            ).returncode

        with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
            with WalFeed(repo, SYSTEM, paths[0].name, spool, owner="postgres", window=3) as feed:
                _until(lambda: len(_spooled(spool)) == 3)
                assert as_server("ls", "spool") != 0
                assert as_server("mv", "-f", f"spool/{paths[0].name}", "taken") == 0
                assert (datadir / "taken").read_bytes() == paths[0].read_bytes()
                _until(lambda: paths[3].name in _spooled(spool))  # the window counted the taken file by name
                time.sleep(0.3)
                assert len(_spooled(spool)) == 3
                feed.started()
                assert as_server("ls", "spool") == 0


def test_get_drops_spooled_segments_replay_has_moved_past(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    for name in ("000000010000000000000001", "000000010000000000000002", "000000010000000000000004",
                 "000000020000000000000001"):  # fmt: skip
        (spool / name).write_bytes(name.encode())
    got = from_spool(SYSTEM, "000000010000000000000003", tmp_path / "x", spool)
    assert got is None  # not spooled: the archive answers
    # earlier ones on that timeline will never be asked for; later ones and other timelines stay
    assert _spooled(spool) == ["000000010000000000000004", "000000020000000000000001"]
    (tmp_path / "elsewhere").write_bytes(b"not a fetched segment")
    (spool / "000000010000000000000005").symlink_to(tmp_path / "elsewhere")
    assert from_spool(SYSTEM, "000000010000000000000005", tmp_path / "y", spool) is None  # a link is not served
    assert not (tmp_path / "y").exists()


def test_a_push_record_serves_only_its_bytes_for_its_own_system(repo_dir: Path, tmp_path: Path) -> None:
    (path,) = _segments(tmp_path, 1)
    spool = tmp_path / "spool"
    spool.mkdir()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    write_record(spool, path.name, digest, f"wal/other-system/{path.name}/" + "0" * 64)
    assert from_record(SYSTEM, path, spool) is None  # another system's object acknowledges nothing here
    write_record(spool, path.name, digest, f"wal/{SYSTEM}/{path.name}/" + "0" * 64)
    path.write_bytes(path.read_bytes() + b"!")
    assert from_record(SYSTEM, path, spool) is None  # other bytes: only the repository may decide
    path.write_bytes(path.read_bytes()[:-1])
    done = from_record(SYSTEM, path, spool)
    assert done is not None and done.already_archived and not (spool / f"{path.name}.archived").exists()


def test_a_spooled_file_is_served_without_the_configuration_or_the_repository_code(cli: Cli, tmp_path: Path) -> None:
    """The point of the spool: PostgreSQL's per-file process renames what is there, before it reads
    bcpctl.yaml or imports the repository machinery (a broken configuration does not matter yet)."""
    (path,) = _segments(tmp_path, 1)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / path.name).write_bytes(path.read_bytes())
    env = {"BCPCTL_CONFIG": str(tmp_path / "no-such.yaml")}
    got = cli("wal", "get", path.name, str(tmp_path / "out"), "--system", SYSTEM, "--spool", str(spool), env=env)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out").read_bytes() == path.read_bytes() and not (spool / path.name).exists()
    (spool / path.name).write_bytes(path.read_bytes())
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bcpctl.cli", "wal", "get", path.name, str(tmp_path / "o2"),
         "--system", SYSTEM, "--spool", str(spool)],
        env=cli.env | env, capture_output=True, text=True,
    )  # fmt: skip
    assert timed.returncode == 0, timed.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if "|" in line}
    assert "backup.walspool" in imported
    assert not imported & {"dc.config", "backup.repository", "backup.opening", "pydantic", "bcpctl.session"}
    # nothing spooled: the archive decides, which needs the configuration
    missing = cli("wal", "get", path.name, str(tmp_path / "o3"), "--system", SYSTEM, "--spool", str(spool), env=env)
    assert missing.returncode == 2 and "no-such.yaml" in missing.stderr


def test_a_segment_the_feed_brought_too_late_leaves_the_window(repo_dir: Path, tmp_path: Path) -> None:
    """Replay fetched segment 1 itself before the feed brought it: once replay took segment 2, the
    late copy of 1 can never be asked for, and must not keep the window full."""
    paths = _segments(tmp_path, 5)
    _archive(repo_dir, paths)
    spool = tmp_path / "spool"
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, paths[0].name, spool, window=2, workers=1) as feed:
            _until(lambda: _spooled(spool) == [paths[0].name, paths[1].name])
            os.replace(spool / paths[1].name, tmp_path / "taken")  # replay took 2 by rename; 1 is stale
            _until(lambda: _spooled(spool) == [paths[2].name, paths[3].name])
        assert feed.problem is None


def test_restore_command_renames_a_spooled_file_and_asks_bcpctl_only_otherwise(tmp_path: Path) -> None:
    from backup.pitr import PREFETCH_SPOOL, restore_command
    from dc.config import Consortium

    wal = tmp_path / "wal-command"  # stands for bcpctl wal: says it was asked, finds nothing
    wal.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "asked"}\nexit 1\n')
    wal.chmod(0o755)

    config = Consortium.model_validate(
        {"consortium": "t", "sites": {"primary": {"prefecture": "茨城県", "repository": str(tmp_path / "r")}},
         "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
         "systems": {SYSTEM: {"tenant": "goka", "business": "住民基本台帳", "tier": 1, "rpo": "1m", "rto": "1h",
                              "source": {"kind": "postgres-wal", "dsn": "postgresql://x@127.0.0.1/x",
                                         "wal_command": str(wal)}}}}
    )  # fmt: skip
    command = restore_command(config, tmp_path / "bcpctl.yaml", SYSTEM, "primary")
    datadir = tmp_path / "data"
    (datadir / PREFETCH_SPOOL).mkdir(parents=True)
    (datadir / "pg_wal").mkdir()
    name = "000000010000000000000007"
    (datadir / PREFETCH_SPOOL / name).write_bytes(b"segment")

    def run(wanted: str) -> int:
        line = command.replace("%f", wanted).replace("%p", "pg_wal/RECOVERYXLOG")
        return subprocess.run(["sh", "-c", line], cwd=datadir).returncode

    assert run(name) == 0 and (datadir / "pg_wal" / "RECOVERYXLOG").read_bytes() == b"segment"
    assert not (tmp_path / "asked").exists()  # no bcpctl process for a spooled file
    assert run("000000010000000000000008") != 0  # not spooled: bcpctl decides (here: not found)
    assert (tmp_path / "asked").read_text().startswith("get 000000010000000000000008 pg_wal/RECOVERYXLOG --system")
    (datadir / PREFETCH_SPOOL / "00000002.history.absent").touch()
    assert run("00000002.history") == 1  # marked absent by the feed: "not in the archive" without asking
    assert run("00000003.history") == 1
    asked = (tmp_path / "asked").read_text().splitlines()
    assert len(asked) == 2 and asked[1].startswith("get 00000003.history")  # only the unmarked one was asked
