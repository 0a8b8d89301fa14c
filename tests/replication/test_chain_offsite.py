"""A format-2 repository (signed chain of deltas) replicated and verified offsite through the real CLI."""

from __future__ import annotations

from pathlib import Path

from tests.replication import primary
from tests.replication.test_cli import ok, one_line_error


def test_a_chain_replicates_verifies_and_a_tampered_link_offsite_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, offsite = str(tmp_path / "primary"), tmp_path / "offsite"
    data = primary.write_tree(tmp_path / "data", files=3)
    env = {"BCPCTL_PASSWORD": ""}
    ok(cli("repo", "init", "--repo", repo, "--manifest-format", "1"))
    ok(cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "goka-juki"))
    upgraded = ok(cli("manifest", "sign", "--chain", "--repo", repo, "--json"))  # a format-1 repository converted
    assert upgraded["format"] == 2 and upgraded["snapshots"] == 1
    primary.mutate(data)
    ok(cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "goka-juki"))
    links = sorted(p.name for p in (Path(repo) / "manifests").iterdir())
    assert links == ["000000000001", "000000000002"]  # the backup signed a delta after the checkpoint
    ok(cli("replicate", "--from", repo, "--to", str(offsite), env=env))
    report = ok(cli("verify-offsite", "--repo", str(offsite), "--json", env=env))
    assert report["ok"] and report["pinned"] and report["snapshots_signed"] == 2
    shown = ok(cli("manifest", "show", "--repo", str(offsite), "--json", env=env))
    assert len(shown["snapshots"]) == 2

    ok(cli("backup", "run", "--repo", repo, "--source", f"path:{data}", "--system", "goka-juki"))
    ok(cli("replicate", "--from", repo, "--to", str(offsite), env=env))
    assert ok(cli("verify-offsite", "--repo", str(offsite), "--json", env=env))["snapshots_signed"] == 3

    link = offsite / "manifests" / "000000000002"
    link.write_bytes(link.read_bytes().replace(b'\\"goka-juki\\"', b'\\"goka-jukj\\"', 1))
    line = one_line_error(cli("verify-offsite", "--repo", str(offsite), env=env), 1)
    assert "manifests/000000000002" in line and "tampered" in line
