"""tenant join --first-run: the joiner's first backup, shipped offsite, then a readiness drill."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from backup.opening import init_repository
from bcpctl.demo.consortium import demo_config, write_config, write_passphrase
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import Cli


def _consortium(work: Path) -> Path:
    raw = demo_config(work, "representative")
    raw["exports"].pop("tenants", None)
    config = work / "bcpctl.yaml"
    write_config(config, raw)
    passphrase = write_passphrase(work / "primary" / "secrets" / "passphrase")
    (work / "offsite" / "secrets").mkdir(parents=True)
    shutil.copy(passphrase, work / "offsite" / "secrets" / "passphrase")
    init_repository(LocalBackend(work / "primary" / "repo", create=True), passphrase.read_text().strip(), kdf=FAST_KDF)
    source = work / "primary" / "systems" / "sakai-juki.sqlite"
    source.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE residents (atena_no INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO residents VALUES (1, '境 太郎')")
    return config


def test_first_run_backs_up_ships_and_drills_the_joiner(cli: Cli, tmp_path: Path) -> None:
    config = _consortium(tmp_path)
    for site in ("primary", "offsite"):
        assert cli("db", "upgrade", "--config", str(config), env={"BCPCTL_SITE": site}).returncode == 0
    args = ("--name", "境町", "--lg-code", "085464", "--population", "24000", "--id", "sakai", "--like", "goka")
    out = tmp_path / "joined.yaml"
    run = cli("tenant", "join", "--config", str(config), *args, "--systems", "住民基本台帳",
              "--out", str(out), "--keys-dir", str(tmp_path / "keys"), "--first-run", "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["first_backup"][0]["system"] == "sakai-juki"
    assert all(b["ok"] for b in result["first_backup"]) and len(result["first_backup"]) == 2  # backup, replication
    assert result["readiness"]["status"] == "passed"


def test_first_run_names_a_joiner_source_that_is_missing_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    config = _consortium(tmp_path)
    (tmp_path / "primary" / "systems" / "sakai-juki.sqlite").unlink()
    for site in ("primary", "offsite"):
        assert cli("db", "upgrade", "--config", str(config), env={"BCPCTL_SITE": site}).returncode == 0
    args = ("--name", "境町", "--lg-code", "085464", "--population", "24000", "--id", "sakai", "--like", "goka")
    run = cli("tenant", "join", "--config", str(config), *args, "--systems", "住民基本台帳",
              "--out", str(tmp_path / "joined.yaml"), "--keys-dir", str(tmp_path / "keys"), "--first-run")  # fmt: skip
    assert run.returncode == 1 and "sakai-juki" in run.stderr and "Traceback" not in run.stderr
    assert (tmp_path / "joined.yaml").is_file(), "the reviewed configuration is written before the first run"
