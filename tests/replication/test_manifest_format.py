"""Which manifest format a repository signs: 2 for a new one, 1 kept where it is found and
convertible with one command, and a format newer than this bcpctl named as such, through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from backup.manifest import MANIFEST_KEY, signing_key
from backup.manifestchain import link_key
from backup.opening import open_repository
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.replication import primary
from tests.replication.test_cli import ok, one_line_error

_LINK_DOMAIN = b"bcpctl/v2/manifest-link\n"


def _head(repo: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(json.loads((repo / MANIFEST_KEY).read_bytes())["body"])


def test_repo_init_signs_format_2_and_format_1_stays_until_converted_in_one_command(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    new, old = tmp_path / "new", tmp_path / "old"
    data = primary.write_tree(tmp_path / "data", files=2)
    made = ok(cli("repo", "init", "--repo", str(new), "--json"))
    assert made["manifest_format"] == 2
    assert _head(new)["version"] == 2 and (new / link_key(1)).exists()
    ok(cli("backup", "run", "--repo", str(new), "--source", f"path:{data}", "--system", "goka-juki"))
    assert sorted(p.name for p in (new / "manifests").iterdir()) == ["000000000001", "000000000002"]

    ok(cli("repo", "init", "--repo", str(old), "--manifest-format", "1"))
    ok(cli("backup", "run", "--repo", str(old), "--source", f"path:{data}", "--system", "goka-juki"))
    assert _head(old)["version"] == 1 and not (old / "manifests").exists()  # a signer keeps the format it finds
    assert ok(cli("verify-offsite", "--repo", str(old), "--json"))["snapshots_signed"] == 1

    converted = ok(cli("manifest", "sign", "--chain", "--repo", str(old), "--json"))
    assert converted["format"] == 2 and converted["snapshots"] == 1
    ok(cli("backup", "run", "--repo", str(old), "--source", f"path:{data}", "--system", "goka-juki"))
    assert _head(old)["version"] == 2 and _head(old)["position"] == 2
    assert ok(cli("verify-offsite", "--repo", str(old), "--json"))["snapshots_signed"] == 2


def _resign(repo: Path, key: str, version: int) -> None:
    """The stored link ``key`` as a newer bcpctl would sign it: intact, only its format is unknown here."""
    with open_repository(LocalBackend(repo), PASSWORD, sign_on_close=False) as opened:
        signer = signing_key(opened.master, opened.config.id)
    doc = json.loads((repo / key).read_bytes())
    body = json.loads(doc["body"])
    body["version"] = version
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    doc = {"format": "bcpctl-manifest", "body": text.decode(), "signature": signer.sign(_LINK_DOMAIN + text).hex()}
    (repo / key).write_bytes(json.dumps(doc).encode())


def test_a_manifest_of_a_newer_format_is_named_so_not_malformed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    data = primary.write_tree(tmp_path / "data", files=2)
    ok(cli("repo", "init", "--repo", str(repo)))
    ok(cli("backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "goka-juki"))
    ok(cli("verify-offsite", "--repo", str(repo)))  # pins the key and the head

    # a newer bcpctl signed the head: the head and its link hold the same bytes
    _resign(repo, MANIFEST_KEY, 3)
    (repo / link_key(2)).write_bytes((repo / MANIFEST_KEY).read_bytes())
    for args in (("verify-offsite", "--repo", str(repo)), ("manifest", "show", "--repo", str(repo))):
        line = one_line_error(cli(*args), 1)
        assert "written by a newer bcpctl (format 3)" in line and "malformed" not in line, line

    # a storage attacker claiming a newer format with no valid signature: refused all the same
    doc = json.loads((repo / MANIFEST_KEY).read_bytes())
    body = json.loads(doc["body"])
    body["version"], body["snapshots"] = 4, []
    doc.update(body=json.dumps(body), signature="00" * 64)
    (repo / MANIFEST_KEY).write_text(json.dumps(doc))
    line = one_line_error(cli("verify-offsite", "--repo", str(repo)), 1)
    assert "(format 4), or forged" in line, line

    # an older link of the chain in a newer format (the head verifies; the walk meets it)
    ok(cli("repo", "init", "--repo", str(tmp_path / "other")))
    other = tmp_path / "other"
    ok(cli("backup", "run", "--repo", str(other), "--source", f"path:{data}", "--system", "goka-juki"))
    ok(cli("backup", "run", "--repo", str(other), "--source", f"path:{data}", "--system", "goka-juki"))
    before = hashlib.sha256((other / link_key(2)).read_bytes()).hexdigest()
    _resign(other, link_key(2), 7)
    assert hashlib.sha256((other / link_key(2)).read_bytes()).hexdigest() != before
    line = one_line_error(cli("manifest", "show", "--repo", str(other)), 1)
    assert "manifests/000000000002 was written by a newer bcpctl (format 7)" in line, line


def test_a_snapshot_whose_process_died_before_signing_is_named_not_yet_signed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    data = primary.write_tree(tmp_path / "data", files=2)
    ok(cli("repo", "init", "--repo", str(repo)))
    ok(cli("backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "goka-juki"))
    primary.mutate(data)
    killed = cli(
        "backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "goka-juki",
        env={"BCPCTL_FAILPOINTS": "backup.after-snapshot"},
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    signed = {e["id"] for e in ok(cli("manifest", "show", "--repo", str(repo), "--json"))["snapshots"]}
    unsigned = {p.name for p in (repo / "snapshots").iterdir()} - signed
    assert len(unsigned) == 1
    dead = unsigned.pop()

    checked = cli("check", "--repo", str(repo), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr  # a note, not a problem: the key proves it genuine
    notes = [n for n in json.loads(checked.stdout)["notes"] if dead in n["object"]]
    assert len(notes) == 1 and notes[0]["message"].startswith("not yet signed"), notes

    verified = cli("verify-offsite", "--repo", str(repo), "--json")
    assert verified.returncode == 1
    report = json.loads(verified.stdout)
    assert [p["key"] for p in report["problems"]] == [f"snapshots/{dead}"]  # one line; the rest still verified
    assert report["problems"][0]["detail"].startswith("snapshot not yet signed")
    assert report["snapshots_signed"] == 1 and report["objects_checked"] > 1

    ok(cli("manifest", "sign", "--repo", str(repo)))  # the checkpoint signs it
    assert ok(cli("verify-offsite", "--repo", str(repo), "--json"))["snapshots_signed"] == 2
