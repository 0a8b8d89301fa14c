"""Key escrow: K-of-N SLIP-39 shares open a repository, K-1 never do; the staff-loss drill uses them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from backup.errors import WrongPassword
from backup.escrow import credentials, open_repository_with_shares, read_share, share_sheet, split_key
from backup.keys import list_slots
from backup.opening import init_repository, open_repository
from dc.errors import UsageError
from failover.drill import run_drill
from failover.drillrequest import DrillRequest
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli, quotes_share
from tests.failover.conftest import Built


def _split(repo_dir: Path, out: Path, shares: int = 5, threshold: int = 3) -> list[Path]:
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        split = split_key(repo, shares=shares, threshold=threshold, label="custodians")
        url = repo.backend.url
    out.mkdir(exist_ok=True)
    files = []
    for number in range(1, shares + 1):
        path = out / f"share-{number}.txt"
        path.write_text(share_sheet(split, number, url), encoding="utf-8")
        files.append(path)
    return files


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    init_repository(LocalBackend(path, create=True), PASSWORD, kdf=FAST_KDF)
    return path


def test_k_shares_open_the_repository_and_k_minus_one_never_do(repo_dir: Path, tmp_path: Path) -> None:
    files = _split(repo_dir, tmp_path / "shares")
    slots = list_slots(LocalBackend(repo_dir))
    assert sorted(s.kind for s in slots) == ["escrow", "passphrase"]
    for chosen in (files[:3], files[2:], [files[4], files[0], files[2]]):
        with open_repository_with_shares(LocalBackend(repo_dir), chosen) as repo:
            assert repo.slot_id == next(s.id for s in slots if s.kind == "escrow")
    with pytest.raises(WrongPassword, match=r"2 escrow share\(s\) given, 3 needed") as err:
        with open_repository_with_shares(LocalBackend(repo_dir), files[:2]):
            pass
    assert not quotes_share(str(err.value), files[0]), "an error must never quote a share"


def test_bad_shares_are_refused_clearly(repo_dir: Path, tmp_path: Path) -> None:
    first = _split(repo_dir, tmp_path / "a")
    second = _split(repo_dir, tmp_path / "b")
    with pytest.raises(UsageError, match="different splits"):
        with open_repository_with_shares(LocalBackend(repo_dir), [first[0], first[1], second[2]]):
            pass
    with pytest.raises(UsageError, match="given twice"):
        with open_repository_with_shares(LocalBackend(repo_dir), [first[0], first[0], first[1]]):
            pass
    mistyped = tmp_path / "mistyped.txt"
    words = read_share(first[0]).split()
    words[3] = "zebra" if words[3] != "zebra" else "academic"
    mistyped.write_text(" ".join(words), encoding="utf-8")
    with pytest.raises(UsageError, match="not a valid SLIP-39 share"):
        with open_repository_with_shares(LocalBackend(repo_dir), [mistyped, first[1], first[2]]):
            pass
    other = tmp_path / "other"
    init_repository(LocalBackend(other, create=True), PASSWORD, kdf=FAST_KDF)
    with pytest.raises(WrongPassword, match="no escrow key slot"):
        with open_repository_with_shares(LocalBackend(other), first[:3]):
            pass
    with pytest.raises(UsageError, match="not both"):
        credentials("pwfile", ["share"])
    assert type(credentials(None, [str(first[0])])).__name__ == "EscrowShares"


def test_escrow_cli_split_and_open(repo_dir: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "safe"
    split = cli(
        "key", "escrow", "split", "--repo", str(repo_dir), "--shares", "3", "--threshold", "2", "--out", str(out)
    )
    assert split.returncode == 0, split.stderr
    files = sorted(out.glob("share-*-of-3.txt"))
    assert len(files) == 3 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert not quotes_share(split.stdout + split.stderr, files[0]), "shares never reach stdout or logs"
    assert "any 2 open the repository" in files[0].read_text(encoding="utf-8")

    env = {"BCPCTL_PASSWORD": ""}
    opened = cli(
        "key",
        "escrow",
        "open",
        "--repo",
        str(repo_dir),
        "--escrow",
        str(files[0]),
        "--escrow",
        str(files[2]),
        "--json",
        env=env,
    )
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["slot"]
    short = cli("key", "escrow", "open", "--repo", str(repo_dir), "--escrow", str(files[1]), env=env)
    assert short.returncode == 3 and "1 escrow share(s) given, 2 needed" in short.stderr
    assert short.stderr.count("\n") == 1
    piped = cli("key", "escrow", "split", "--repo", str(repo_dir), "--shares", "3", "--threshold", "2")
    assert piped.returncode == 2 and "--out" in piped.stderr
    slots_before = len(list_slots(LocalBackend(repo_dir)))
    refused = cli(
        "key",
        "escrow",
        "split",
        "--repo",
        str(repo_dir),
        "--shares",
        "2",
        "--threshold",
        "3",
        "--out",
        str(tmp_path / "x"),
    )
    assert refused.returncode == 2 and len(list_slots(LocalBackend(repo_dir))) == slots_before
    again = cli(
        "key", "escrow", "split", "--repo", str(repo_dir), "--shares", "3", "--threshold", "2", "--out", str(out)
    )
    assert again.returncode == 2 and "already holds shares" in again.stderr
    assert len(list_slots(LocalBackend(repo_dir))) == slots_before, "a refused split adds no key slot"


@pytest.mark.postgres
def test_staff_loss_drill_opens_the_offsite_copy_from_shares_only(
    example: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _split(example.primary_repo(), tmp_path / "custodians", shares=5, threshold=3)
    example.ship()  # the escrow key slot travels offsite with the next replication
    # The staff who knew the passphrase are gone: no passphrase anywhere.
    monkeypatch.delenv("BCPCTL_PASSWORD", raising=False)
    ctx = example.context()
    result = run_drill(
        ctx, DrillRequest(mode="staff-loss", escrow=tuple(str(f) for f in files[1:4])), handle_signals=False
    )
    assert result.status == "passed", result.verdict()
    assert len(result.systems) == 8 and result.cleanup is not None and result.cleanup.ok
    ja = Path(result.reports["ja:naka"]).read_text(encoding="utf-8")
    assert "分散保管鍵のみで復号" in ja

    short = run_drill(ctx, DrillRequest(mode="staff-loss", escrow=(str(files[0]), str(files[4]))), handle_signals=False)
    assert short.status == "failed" and "2 escrow share(s) given, 3 needed" in (short.error or "")
    assert short.systems == []
    with pytest.raises(UsageError, match="--escrow"):
        run_drill(ctx, DrillRequest(mode="staff-loss"), handle_signals=False)
    assert os.environ.get("BCPCTL_PASSWORD") is None
