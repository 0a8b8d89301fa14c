"""Key slots through the CLI: the command that skipped a bad object says so, `key list` shows it,
`key remove` clears it, and nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

from backup.opening import init_repository
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    # A copy of the real slot asking Argon2id for 4 GiB: it would exhaust the host at every unlock.
    (slot,) = (repo / "keys").iterdir()
    doc = json.loads(slot.read_bytes())
    doc["id"] = "0000000000000000"
    doc["kdf"]["memory_kib"] = 4 * 1024 * 1024
    (repo / "keys" / doc["id"]).write_text(json.dumps(doc))
    return repo


def test_a_damaged_slot_sorting_first_is_reported_and_skipped(cli: Cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    listed = cli("snapshots", "--repo", str(repo))
    assert listed.returncode == 0, listed.stderr
    (warning,) = listed.stderr.splitlines()
    assert warning.startswith("bcpctl: warning: key slot 0000000000000000 skipped:")

    forgot = cli("forget", "--repo", str(repo), "--keep-last", "1", "--json")
    assert forgot.returncode == 0, forgot.stderr
    assert any("0000000000000000" in w for w in json.loads(forgot.stdout)["warnings"])
    assert "0000000000000000" in forgot.stderr

    wrong = cli("snapshots", "--repo", str(repo), env={"BCPCTL_PASSWORD": "not the passphrase"})
    assert wrong.returncode == 3 and "1 unreadable object(s) in keys/ were skipped" in wrong.stderr


def test_key_list_and_key_remove_handle_damaged_objects(cli: Cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    rows = json.loads(cli("key", "list", "--repo", str(repo), "--json").stdout)
    by_id = {row["id"]: row for row in rows}
    assert by_id["0000000000000000"]["status"] == "damaged" and "kdf" in by_id["0000000000000000"]["problem"]
    (current,) = [row["id"] for row in rows if row["current"]]
    assert by_id[current]["status"] == "ok"

    people = cli("key", "list", "--repo", str(repo))
    assert people.returncode == 0 and "damaged" in people.stdout

    last = cli("key", "remove", current, "--repo", str(repo))
    assert last.returncode == 2 and last.stderr.count("bcpctl: error:") == 1, last.stderr
    removed = cli("key", "remove", "0000000000000000", "--repo", str(repo), "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"] == "0000000000000000"
    assert sorted(p.name for p in (repo / "keys").iterdir()) == [current]
    clean = cli("snapshots", "--repo", str(repo))
    assert clean.returncode == 0 and clean.stderr == ""
