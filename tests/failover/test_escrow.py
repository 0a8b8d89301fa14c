"""Key escrow: K-of-N SLIP-39 shares open a repository, K-1 never do; the staff-loss drill uses them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from backup.errors import WrongPassword
from backup.escrow import credentials, open_repository_with_shares, read_share, share_sheet, split_key
from backup.escrowwords import check_code
from backup.opening import init_repository, open_repository
from backup.slotscan import list_slots
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
    with pytest.raises(UsageError, match=r"mistyped.txt: word 4 is (wrong|not a SLIP-39 word)") as err:
        with open_repository_with_shares(LocalBackend(repo_dir), [mistyped, first[1], first[2]]):
            pass
    assert not quotes_share(str(err.value), first[0])
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


def _typed_like_a_custodian(words: list[str]) -> str:
    """The words as typed through a Japanese IME on a bad day: full width, capitals, numbers, odd spacing."""
    full = ["".join(chr(ord(c) + 0xFEE0) for c in w) for w in words]
    lines = [f"{i + 1}. {w.upper() if i % 2 else w}" for i, w in enumerate(full)]
    return "\u3000 ".join(lines[:11]) + "\n\n  " + "\n".join(lines[11:]) + "  \n"


def test_escrow_split_writes_a_printable_sheet_per_custodian_and_open_forgives_typing(
    repo_dir: Path, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "safe"
    custodians = ["五霞町 会計管理者 鈴木一郎", "那珂市 総務課長 佐藤花子", "協議会事務局 田中"]
    split = cli(
        "key", "escrow", "split", "--repo", str(repo_dir), "--shares", "3", "--threshold", "2", "--out", str(out),
        *[a for name in custodians for a in ("--custodian", name)],
        "--contact", "いばらき自治体クラウド協議会 事務局 029-000-0000 (24時間)", "--json",
    )  # fmt: skip
    assert split.returncode == 0, split.stderr
    result = json.loads(split.stdout)
    assert result["pdf_unavailable"] is None
    for number, custodian in enumerate(custodians, start=1):
        share = out / f"share-{number}-of-3.txt"
        html = (out / f"share-{number}-of-3.html").read_text(encoding="utf-8")
        pdf = (out / f"share-{number}-of-3.pdf").read_bytes()
        for path in (share, out / f"share-{number}-of-3.html", out / f"share-{number}-of-3.pdf"):
            assert str(path) in result["files"] and stat.S_IMODE(path.stat().st_mode) == 0o600
        words = read_share(share).split()
        assert custodian in html and "029-000-0000" in html
        assert "全 3 片のうち 2 片" in html and "保管のしかた" in html and "いつ・どう使うか" in html
        assert all(f"{w}</li>" in html for w in words) and check_code(" ".join(words)) in html
        assert f"# check: {check_code(' '.join(words))}" in share.read_text(encoding="utf-8")
        assert pdf.startswith(b"%PDF-") and b"/Count 1" in pdf  # one page, printed by Chromium, not drawn by us
    assert not quotes_share(split.stdout + split.stderr, out / "share-1-of-3.txt")

    # Two custodians type their words by hand, the way people do; the shares open the repository.
    typed = []
    for number in (1, 3):
        path = tmp_path / f"typed-{number}.txt"
        path.write_text(_typed_like_a_custodian(read_share(out / f"share-{number}-of-3.txt").split()), "utf-8")
        typed.append(path)
    env = {"BCPCTL_PASSWORD": ""}
    opened = cli("key", "escrow", "open", "--repo", str(repo_dir), "--escrow", str(typed[0]), "--escrow",
                 str(typed[1]), "--json", env=env)  # fmt: skip
    assert opened.returncode == 0, opened.stderr

    # One real mistake: exit 2, one line, the share and the word's number, never the words.
    words = read_share(out / "share-1-of-3.txt").split()
    words[6] = next(w for w in ("academic", "acid", "zero") if w[:4] != words[6][:4])
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(_typed_like_a_custodian(words), encoding="utf-8")
    refused = cli("key", "escrow", "open", "--repo", str(repo_dir), "--escrow", str(wrong), "--escrow",
                  str(typed[1]), env=env)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "wrong.txt: word 7 is wrong" in refused.stderr
    assert not quotes_share(refused.stderr, out / "share-1-of-3.txt")
    names = cli("key", "escrow", "split", "--repo", str(repo_dir), "--shares", "3", "--threshold", "2",
                "--out", str(tmp_path / "n"), "--custodian", "one")  # fmt: skip
    assert names.returncode == 2 and "one per share" in names.stderr


def test_without_chromium_the_sheets_are_html_and_the_split_says_so(repo_dir: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "safe"
    split = cli(
        "key", "escrow", "split", "--repo", str(repo_dir), "--shares", "2", "--threshold", "2", "--out", str(out),
        env={"BCPCTL_CHROMIUM": str(tmp_path / "no-such-chromium")},
    )  # fmt: skip
    assert split.returncode == 0, split.stderr
    assert "no PDF sheets" in split.stdout and "print the .html sheets" in split.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "share-1-of-2.html", "share-1-of-2.txt", "share-2-of-2.html", "share-2-of-2.txt",
    ]  # fmt: skip
