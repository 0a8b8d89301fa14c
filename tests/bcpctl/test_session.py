"""Every command that opens an existing repository takes ``--escrow`` like failover does: the
staff-loss path (only custodians' shares left) can list, restore, check and re-key without a passphrase."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backup.opening import init_repository
from backup.slotscan import list_slots
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli, quotes_share

#: the operator's passphrase is gone: anything that still reads it fails with exit 3
NO_PASSPHRASE = {"BCPCTL_PASSWORD": "nobody remembers this"}


@pytest.fixture
def escrowed(tmp_path: Path, cli: Cli) -> tuple[Path, list[Path], Path]:
    """A repository with one snapshot of a small tree and a 2-of-3 escrow split."""
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    source = tmp_path / "source"
    (source / "juki").mkdir(parents=True)
    (source / "juki" / "residents.csv").write_text("id,name\n1,住民一\n", encoding="utf-8")
    backed = cli("backup", "run", "--repo", str(repo), "--source", f"path:{source}", "--system", "goka-juki")
    assert backed.returncode == 0, backed.stderr
    split = cli(
        "key", "escrow", "split", "--repo", str(repo), "--shares", "3", "--threshold", "2", "--out", str(tmp_path / "s")
    )
    assert split.returncode == 0, split.stderr
    shares = sorted((tmp_path / "s").glob("share-*-of-3.txt"))
    assert len(shares) == 3
    return repo, shares, source


def _escrow(*files: Path) -> list[str]:
    return [arg for f in files for arg in ("--escrow", str(f))]


def test_k_shares_list_restore_and_check_without_the_passphrase(
    escrowed: tuple[Path, list[Path], Path], cli: Cli, tmp_path: Path
) -> None:
    repo, shares, source = escrowed
    assert cli("snapshots", "--repo", str(repo), env=NO_PASSPHRASE).returncode == 3  # the passphrase really is wrong
    listed = cli("snapshots", "--repo", str(repo), *_escrow(shares[0], shares[2]), "--json", env=NO_PASSPHRASE)
    assert listed.returncode == 0, listed.stderr
    (snapshot,) = json.loads(listed.stdout)
    assert snapshot["system"] == "goka-juki"

    target = tmp_path / "restored"
    restored = cli(
        "restore", "latest", "--repo", str(repo), "--target", str(target), *_escrow(*shares[1:]), env=NO_PASSPHRASE
    )
    assert restored.returncode == 0, restored.stderr
    (copy,) = target.rglob("residents.csv")
    assert copy.read_bytes() == (source / "juki" / "residents.csv").read_bytes()

    checked = cli("check", "--repo", str(repo), "--read-data", *_escrow(shares[0], shares[1]), env=NO_PASSPHRASE)
    assert checked.returncode == 0, checked.stderr


def test_k_shares_take_a_backup_without_the_passphrase(
    escrowed: tuple[Path, list[Path], Path], cli: Cli, tmp_path: Path
) -> None:
    repo, shares, source = escrowed
    (source / "juki" / "moved-in.csv").write_text("id,name\n2,住民二\n", encoding="utf-8")
    args = ["backup", "run", "--repo", str(repo), "--source", f"path:{source}", "--system", "goka-juki"]
    assert cli(*args, env=NO_PASSPHRASE).returncode == 3
    backed = cli(*args, *_escrow(shares[0], shares[1]), "--json", env=NO_PASSPHRASE)
    assert backed.returncode == 0, backed.stderr
    (run,) = json.loads(backed.stdout)["backups"]
    assert run["ok"] and run["result"]["files_new"] == 1
    listed = cli("snapshots", "--repo", str(repo), "--json", *_escrow(shares[2], shares[0]), env=NO_PASSPHRASE)
    assert len(json.loads(listed.stdout)) == 2

    config = Path(__file__).parents[2] / "examples" / "ibaraki.yaml"
    refused = cli("backup", "run", "--config", str(config), *_escrow(shares[0], shares[1]), env=NO_PASSPHRASE)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--escrow unlocks the repository given with --repo" in refused.stderr


def test_custodians_give_a_new_operator_a_passphrase(escrowed: tuple[Path, list[Path], Path], cli: Cli) -> None:
    repo, shares, _ = escrowed
    added = cli(
        "key",
        "add",
        "--repo",
        str(repo),
        "--label",
        "new operator",
        *_escrow(shares[0], shares[1]),
        env=NO_PASSPHRASE | {"BCPCTL_NEW_PASSWORD": "a fresh passphrase"},
    )
    assert added.returncode == 0, added.stderr
    listed = cli("snapshots", "--repo", str(repo), "--json", env={"BCPCTL_PASSWORD": "a fresh passphrase"})
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1


def test_bad_escrow_input_is_one_line_and_changes_nothing(
    escrowed: tuple[Path, list[Path], Path], cli: Cli, tmp_path: Path
) -> None:
    repo, shares, _ = escrowed
    slots = sorted(s.id for s in list_slots(LocalBackend(repo)))
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD, encoding="utf-8")
    cases = [
        (["snapshots", *_escrow(shares[0])], 3, "1 escrow share(s) given, 2 needed"),
        (["key", "add", *_escrow(*shares[:2]), "--password-file", str(password_file)], 2, "not both"),
        (["key", "remove", slots[0], *_escrow(shares[0], tmp_path / "missing.txt")], 2, "cannot read escrow share"),
    ]
    for args, code, message in cases:
        done = cli(*args, "--repo", str(repo), env=NO_PASSPHRASE | {"BCPCTL_NEW_PASSWORD": "x"})
        assert done.returncode == code, (args, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert not quotes_share(done.stderr, shares[0]), "an error never quotes a share"
    assert sorted(s.id for s in list_slots(LocalBackend(repo))) == slots
