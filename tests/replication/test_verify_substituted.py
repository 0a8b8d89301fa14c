"""A whole repository substituted offsite with the replicator's credentials, through the real CLI.

The pin that makes ``verify-offsite`` prove something (the manifest key and the head accepted
last) lives in the control database, out of the attacker's reach, but it is looked up by the
repository id in the offsite's ``config`` — an object the attacker can write. Someone who puts a
repository of their own there (their config, their key, their signed chain, the real snapshots
deleted) must be refused because this site replicated another repository to that place, not
"verified against itself".
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.replication import primary
from tests.replication.test_cli import ok, one_line_error


def test_a_repository_substituted_offsite_is_refused_against_the_one_replicated_there(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, fake, offsite = tmp_path / "primary", tmp_path / "fake", tmp_path / "offsite"
    data = primary.write_tree(tmp_path / "data", files=2)
    env = {"BCPCTL_PASSWORD": ""}
    ok(cli("repo", "init", "--repo", str(repo)))
    ok(cli("backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "goka-juki"))
    ok(cli("replicate", "--from", str(repo), "--to", str(offsite), env=env))
    assert ok(cli("verify-offsite", "--repo", str(offsite), "--json", env=env))["pinned"]

    # the attacker's own repository (own key), signed, and nothing of the real one left
    ok(cli("repo", "init", "--repo", str(fake)))
    shutil.rmtree(offsite)
    shutil.copytree(fake, offsite)

    line = one_line_error(cli("verify-offsite", "--repo", str(offsite), env=env), 1)
    assert "pinned" in line, line
