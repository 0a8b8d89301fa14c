"""``bcpctl demo`` runs the whole story on embedded defaults and reports every step."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli


def test_demo_runs_end_to_end(cli: Cli, tmp_path: Path) -> None:
    result = cli("demo", "--workdir", str(tmp_path / "demo"), "--scale", "0.01", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["workdir"] == str(tmp_path / "demo")
    assert [s["ok"] for s in summary["steps"]] == [True] * len(summary["steps"])
    assert summary["backup"]["bytes_in"] > 0
    assert 0 < summary["backup"]["incremental_added_bytes"] < summary["backup"]["bytes_stored"]
    assert len(summary["restores"]) == 8 and all(r["verified"] for r in summary["restores"])
    passphrase = (tmp_path / "demo/secrets/passphrase").read_text().strip()
    assert passphrase not in result.stdout + result.stderr
    # The offsite copy holds only ciphertext: no seeded name appears in any of its objects.
    offsite = tmp_path / "demo/offsite/repo"
    blob = b"".join(p.read_bytes() for p in offsite.rglob("*") if p.is_file())
    assert "申請書".encode() not in blob and "丁目".encode() not in blob
