"""The CLI contract: exit codes, one-line errors, --json on every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"


def test_wrong_passphrase_exits_3_with_one_line(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    result = cli("snapshots", "--repo", repo, env={"BCPCTL_PASSWORD": "not the passphrase"})
    assert result.returncode == 3
    assert result.stderr.startswith("bcpctl: error: wrong passphrase") and result.stderr.count("\n") == 1
    assert "not the passphrase" not in result.stderr + result.stdout


def test_password_file_and_missing_password(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    secret = tmp_path / "pw"
    secret.write_text("file passphrase\n")
    assert (
        cli("repo", "init", "--repo", repo, "--password-file", str(secret), env={"BCPCTL_PASSWORD": ""}).returncode == 0
    )
    assert cli("snapshots", "--repo", repo, "--password-file", str(secret)).returncode == 0
    result = cli("snapshots", "--repo", repo, env={"BCPCTL_PASSWORD": ""})
    assert result.returncode == 2 and "no passphrase" in result.stderr


def test_init_refuses_an_existing_repository(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    config_before = (tmp_path / "repo" / "config").read_bytes()
    again = cli("repo", "init", "--repo", repo)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert (tmp_path / "repo" / "config").read_bytes() == config_before


def test_not_a_repository_and_bad_arguments_exit_2(cli: Cli, tmp_path: Path) -> None:
    assert cli("snapshots", "--repo", str(tmp_path)).returncode == 2
    assert cli("backup", "run", "--repo", str(tmp_path), "--source", "ftp:x").returncode == 2
    assert cli("check", "--repo", str(tmp_path), "--subset", "5/3").returncode == 2
    unknown = cli("nonsense")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1


def test_invalid_config_exits_2_naming_the_field(cli: Cli, tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["systems"]["goka-juki"]["rto"] = "soon"
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = cli("backup", "run", "--config", str(path))
    assert result.returncode == 2
    assert "systems.goka-juki.rto" in result.stderr and str(path) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_key_slots(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    added = cli(
        "key",
        "add",
        "--repo",
        repo,
        "--label",
        "second operator",
        "--json",
        env={"BCPCTL_NEW_PASSWORD": "second operator passphrase"},
    )
    assert added.returncode == 0, added.stderr
    slot = json.loads(added.stdout)["added"]
    slots = json.loads(cli("key", "list", "--repo", repo, "--json").stdout)
    assert len(slots) == 2 and sum(s["current"] for s in slots) == 1
    assert cli("snapshots", "--repo", repo, env={"BCPCTL_PASSWORD": "second operator passphrase"}).returncode == 0
    in_use = cli("key", "remove", slot, "--repo", repo, env={"BCPCTL_PASSWORD": "second operator passphrase"})
    assert (in_use.returncode == 2 and "in use" in in_use.stderr) or "unlocked with" in in_use.stderr
    assert cli("key", "remove", slot, "--repo", repo).returncode == 0
    gone = cli("snapshots", "--repo", repo, env={"BCPCTL_PASSWORD": "second operator passphrase"})
    assert gone.returncode == 3


def test_backup_from_config_records_runs(cli: Cli, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "juki.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE residents (id INTEGER)")
    conn.executemany("INSERT INTO residents VALUES (?)", [(i,) for i in range(10)])
    conn.commit()
    conn.close()
    config = {
        "consortium": "t",
        "control_db": f"sqlite:///{tmp_path / 'control.db'}",
        "sites": {"primary": {"prefecture": "茨城県", "repository": str(tmp_path / "repo")}},
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            "goka-juki": {
                "tenant": "goka",
                "business": "住民基本台帳",
                "tier": 1,
                "rpo": "15m",
                "rto": "4h",
                "source": {"kind": "sqlite", "path": "juki.sqlite"},
            }
        },
    }
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert cli("repo", "init", "--repo", str(tmp_path / "repo")).returncode == 0
    assert cli("db", "upgrade", "--config", str(path)).returncode == 0
    result = cli("backup", "run", "--config", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backups"][0]["result"]["tables"] == {"residents": 10}
    rows = (
        sqlite3.connect(tmp_path / "control.db").execute("SELECT system, ok, snapshot_id FROM backup_runs").fetchall()
    )
    assert rows[0][0] == "goka-juki" and rows[0][1] == 1 and len(rows[0][2]) == 64
    restored = cli(
        "restore", "latest:goka-juki", "--repo", str(tmp_path / "repo"), "--target", str(tmp_path / "out"), "--json"
    )
    assert restored.returncode == 0 and json.loads(restored.stdout)["tables"] == {"residents": 10}


@pytest.mark.parametrize("system", ["_control", "_", "_anything-else"])
def test_backup_run_refuses_a_reserved_system_and_writes_nothing(cli: Cli, tmp_path: Path, system: str) -> None:
    # Hostile finding 13: a `_control` snapshot planted with the repository key was promoted at failover.
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    refused = cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", system)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "reserved" in refused.stderr
    listed = cli("snapshots", "--repo", repo, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


@pytest.mark.parametrize("system", ["[/x]", "[red]goka-juki", "s\x1b[2J", "s\u202ex"])
def test_backup_run_refuses_a_system_name_a_table_would_obey_and_writes_nothing(
    cli: Cli, tmp_path: Path, system: str
) -> None:
    """Every table draws the system name: '[/x]' ended the backup in an internal error (rich
    markup) after its snapshot was written, '[red]goka-juki' was listed as 'goka-juki' in red,
    an escape sequence acted on the terminal."""
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    refused = cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", system)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("bcpctl: error: system ") and refused.stderr.count("\n") == 1
    listed = cli("snapshots", "--repo", repo, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_backup_run_of_a_path_with_brackets_reports_it_as_written(cli: Cli, tmp_path: Path) -> None:
    """The run's table drew the source as rich markup: a directory '[/x]' turned a stored
    backup into an internal error, exit 1."""
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    data = tmp_path / "[" / "x]"
    data.mkdir(parents=True)
    (data / "f").write_text("x")
    done = cli("backup", "run", "--repo", repo, "--source", f"path:{data}", env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert f"path:{data}" in done.stdout
