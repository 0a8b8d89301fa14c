"""A 訓練 export: the whole path on synthetic residents shaped like the real ones, and nobody real in it.

Every row of the rehearsal's files is compared with the real registry of the fixture: no name
with its date of birth, no pseudonymous person_ref, is a real resident's; the 町字 and birth
years match the real shape; 訓練 is in every file name, the envelope, the manifest and the audit.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from dc.audit import read_entries
from tests.conftest import Cli
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context, read_csv
from victim_support.exportdrill import TRAINING, run_export_drill
from victim_support.pseudonym import Pseudonymizer


def real_registry(site: Site) -> list[sqlite3.Row]:
    conn = sqlite3.connect(site.registry)
    conn.row_factory = sqlite3.Row
    return conn.execute("select * from residents where status='1'").fetchall()


def test_a_rehearsal_ships_zero_real_residents(site: Site, tmp_path: Path) -> None:
    config, settings, state = context(site)
    result = run_export_drill(
        state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=datetime.now(UTC),
        actor="test", config_dir=site.root, partner_identity=site.partner_key,
    )  # fmt: skip
    assert result.opened and TRAINING in result.bundle.name
    assert all(name.startswith(TRAINING) for name in result.files)
    opened = tmp_path / "out" / f"{TRAINING}-opened"
    assert sorted(p.name for p in opened.iterdir() if p.name.endswith(".csv")) == sorted(result.files)
    rows = read_csv(opened / f"{TRAINING}-persons.csv")
    real = real_registry(site)
    assert len(rows) == len(real) == result.rows

    # every row against the real registry: no real name with its birth date, no real person's pseudonym
    real_people = {(r["family_name"] + "\u3000" + r["given_name"], r["birth_date"]) for r in real}
    pz = Pseudonymizer((site.root / "goka.secret").read_text().strip().encode(), "082040")
    real_refs = {pz.person(r["atena_no"]) for r in real}
    for row in rows:
        assert (row["name"], row["birth_date"]) not in real_people, row
        assert row["person_ref"] not in real_refs
        assert TRAINING in row["banchi"]
    # shaped like the real town: the same 町字 and birth years, resident for resident
    assert Counter((r["machiaza_id"], r["birth_date"][:4]) for r in rows) == Counter(
        (r["machiaza_id"], r["birth_date"][:4]) for r in real
    )
    manifest = json.loads((opened / "manifest.json").read_text())
    assert manifest["drill"] == TRAINING
    (entry,) = [e for e in read_entries(state) if e.action == "drill.export"]
    assert TRAINING in entry.subject and json.loads(entry.details)["drill"] == TRAINING


def test_cli_drill_run_mode_export(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    done = cli("drill", "run", "--mode", "export", "--tenant", "goka", "--partner", "koga", "--out", out,
               "--partner-identity", str(site.partner_key), "--config", str(site.config_path), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["opened"] is True and data["rows"] > 0 and data["time_to_deliver"] > 0
    refused = cli("drill", "run", "--mode", "export", "--config", str(site.config_path))
    assert refused.returncode == 2 and "--tenant, --partner and --out" in refused.stderr
