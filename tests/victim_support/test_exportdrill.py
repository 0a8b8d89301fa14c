"""A 訓練 export: the whole path on synthetic residents shaped like the real ones, and nobody real in it.

Every row of the rehearsal's files is compared with the real registry of the fixture: no name
with its date of birth, no pseudonymous person_ref, is a real resident's; the 町字 and birth
years match the real shape; 訓練 is in every file name, the envelope, the manifest and the audit.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from dc.audit import read_entries
from dc.errors import UsageError
from failover.records import list_runs, load_document
from tests.conftest import Cli
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context, read_csv
from victim_support.bundle import open_bundle
from victim_support.exportdrill import BASIS, FIELDS, PURPOSES, TRAINING, run_export_drill
from victim_support.notes import evacuee_notes
from victim_support.policy import NewRequest, Scope
from victim_support.pseudonym import Pseudonymizer
from victim_support.signing import parse_private_key
from victim_support.store import export_requests, judge


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
    # the partner deleted what it received and opened; the home copy is opened again here to read every row
    assert not (tmp_path / "out" / f"{TRAINING}-opened").exists()
    assert not (tmp_path / "out" / f"{TRAINING}-delivered").exists()
    opened = tmp_path / "reopened"
    open_bundle(result.bundle, site.partner_key, signing_key(site).public_key(), opened, datetime.now(UTC))
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
    details = json.loads(entry.details)
    assert TRAINING in entry.subject and details["drill"] == TRAINING and details["run"] == result.run_id
    # the whole path ran, each step recorded: approvals by the rehearsal rule, never a real approver
    assert list(result.steps) == ["request", "approvals", "build", "delivery", "open", "note", "deletion"]
    assert result.approvals == 2 and all(a["approval"]["approver"].startswith(TRAINING) for a in details["approvals"])
    assert not any(e.action.startswith("export.") for e in read_entries(state))
    assert TRAINING in result.note and TRAINING in result.deleted_by and not result.partner_key_registered
    # a synthetic person never reaches the 被災者台帳 view, and no request a build could use was filed
    with state.connect() as conn:
        assert conn.execute(select(func.count()).select_from(evacuee_notes)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(export_requests)).scalar() == 0
    # recorded like any drill: the run, its steps as checks, time to deliver as the RTO
    found = load_document(state, result.run_id)
    assert found is not None
    record, doc = found
    assert (record.kind, record.mode, record.status, record.tenant) == ("drill", "export", "passed", "goka")
    assert doc is not None and doc["systems"][0]["rto_seconds"] == result.time_to_deliver
    assert [c["name"] for c in doc["checks"]] == [f"{TRAINING} {s}" for s in result.steps]


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 5, 15, 30, tzinfo=UTC), datetime(2026, 12, 5, 23, 30, tzinfo=UTC)],
    ids=["00:30 JST", "08:30 JST"],
)
def test_a_rehearsal_judges_its_request_on_the_jst_day_like_every_filing(
    site: Site, tmp_path: Path, now: datetime
) -> None:
    """Between 00:00 and 09:00 JST UTC still says yesterday: the rehearsal's day is the one the store judges by."""
    config, settings, state = context(site)
    result = run_export_drill(
        state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=now,
        actor="test", config_dir=site.root,
    )  # fmt: skip
    (entry,) = [e for e in read_entries(state) if e.action == "drill.export"]
    audited = json.loads(entry.details)["disaster_date"]
    assert audited == "2026-12-06", audited
    found = load_document(state, result.run_id)
    assert found is not None and found[1] is not None
    (request,) = [c for c in found[1]["checks"] if c["name"] == f"{TRAINING} request"]
    assert "disaster of 2026-12-06" in json.dumps(request, ensure_ascii=False)
    # what the rehearsal shows is what a filing on the same audited request at the same instant decides
    asked = NewRequest("koga", "goka", TRAINING, date.fromisoformat(audited), BASIS, PURPOSES, FIELDS,
                       Scope(all_areas=True), TRAINING, retention_days=1)  # fmt: skip
    assert judge(config, settings, asked, now).allowed and result.status == "passed"


def signing_key(site: Site) -> Ed25519PrivateKey:
    return parse_private_key(site.signing_key.read_bytes(), "goka-sign")


def test_a_partner_key_that_is_not_the_registered_one_is_refused_before_anything_runs(
    site: Site, tmp_path: Path
) -> None:
    config, settings, state = context(site)
    stranger = tmp_path / "stranger.key"
    stranger.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    koga = config.partners["koga"].model_copy(update={"verify_key": site.verify_key})
    config = config.model_copy(update={"partners": {**config.partners, "koga": koga}})
    with pytest.raises(UsageError, match="not the partner's registered signing key"):
        run_export_drill(
            state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out",
            now=datetime.now(UTC), actor="test", config_dir=site.root, partner_signing_key=stranger,
        )  # fmt: skip
    assert list_runs(state) == [] and not (tmp_path / "out").exists()


def test_a_registered_partner_key_signs_the_note_and_the_deletion(site: Site, tmp_path: Path) -> None:
    config, settings, state = context(site)
    koga = config.partners["koga"].model_copy(update={"verify_key": site.verify_key})
    config = config.model_copy(update={"partners": {**config.partners, "koga": koga}})
    result = run_export_drill(
        state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=datetime.now(UTC),
        actor="test", config_dir=site.root, partner_signing_key=site.signing_key,
    )  # fmt: skip
    assert result.partner_key_registered and result.opened is None and result.status == "passed"
    found = load_document(state, result.run_id)
    assert found is not None and found[1] is not None
    assert found[1]["warnings"] == ["not opened on the partner's side: no --partner-identity"]


def test_a_failed_rehearsal_is_recorded_as_failed(site: Site, tmp_path: Path) -> None:
    config, settings, state = context(site)
    (tmp_path / "out" / "x").mkdir(parents=True)
    now = datetime.now(UTC)
    taken = tmp_path / "out" / f"{TRAINING}-delivered" / f"{TRAINING}-085421-{now:%Y%m%dT%H%M%SZ}"
    taken.mkdir(parents=True)
    with pytest.raises(UsageError, match="exists already"):
        run_export_drill(state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=now,
                         actor="test", config_dir=site.root)  # fmt: skip
    (run,) = list_runs(state)
    assert (run.mode, run.status) == ("export", "failed") and "exists already" in (run.error or "")


def test_cli_drill_run_mode_export(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    done = cli("drill", "run", "--mode", "export", "--tenant", "goka", "--partner", "koga", "--out", out,
               "--partner-identity", str(site.partner_key), "--config", str(site.config_path), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["opened"] is True and data["rows"] > 0 and data["time_to_deliver"] > 0
    listed = cli("drill", "list", "--config", str(site.config_path), "--json")
    assert [(r["id"], r["mode"], r["status"]) for r in json.loads(listed.stdout)] == [
        (data["run_id"], "export", "passed")
    ]
    report = cli("drill", "report", data["run_id"], "--format", "html", "--config", str(site.config_path))
    assert report.returncode == 0, report.stderr
    assert f"{TRAINING}-export-goka" in report.stdout
    ja = cli("drill", "report", data["run_id"], "--format", "ja", "--config", str(site.config_path))
    assert ja.returncode == 0 and TRAINING in ja.stdout, ja.stderr
    refused = cli("drill", "run", "--mode", "export", "--config", str(site.config_path))
    assert refused.returncode == 2 and "--tenant, --partner and --out" in refused.stderr


def test_the_rehearsals_time_to_deliver_and_age_are_metrics_failed_ones_prove_nothing(
    site: Site, tmp_path: Path
) -> None:
    from monitoring.metrics import build_registry
    from monitoring.provider import SourceContext

    config, settings, state = context(site)
    value = build_registry(SourceContext(state, config)).get_sample_value
    assert value("bcp_export_rehearsal_overdue", {"tenant": "goka"}) == 1.0, "never rehearsed"
    assert value("bcp_export_rehearsal_rto_seconds", {"tenant": "goka"}) == 7200.0
    assert value("bcp_export_rehearsal_seconds", {"tenant": "goka", "partner": "koga"}) is None
    before = datetime.now(UTC)
    result = run_export_drill(
        state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=before,
        actor="test", config_dir=site.root, partner_identity=site.partner_key,
    )  # fmt: skip
    labels = {"tenant": "goka", "partner": "koga"}
    value = build_registry(SourceContext(state, config)).get_sample_value
    assert value("bcp_export_rehearsal_seconds", labels) == result.time_to_deliver > 0
    stamp = value("bcp_export_rehearsal_last_success_timestamp_seconds", labels)
    assert stamp is not None and before.timestamp() - 1 <= stamp <= datetime.now(UTC).timestamp() + 1
    assert value("bcp_export_rehearsal_overdue", {"tenant": "goka"}) == 0.0
    assert value("bcp_metrics_source_ok", {"source": "export_rehearsal"}) == 1.0
    # the run failed after its audit entry (say the verdict was edited to failed): not a proof any more
    from sqlalchemy import update

    from failover.records import drill_runs

    with state.begin() as conn:
        conn.execute(update(drill_runs).where(drill_runs.c.id == result.run_id).values(status="failed"))
    value = build_registry(SourceContext(state, config)).get_sample_value
    assert value("bcp_export_rehearsal_seconds", labels) is None
    assert value("bcp_export_rehearsal_overdue", {"tenant": "goka"}) == 1.0


def test_a_tenant_is_overdue_when_its_newest_passed_rehearsal_with_any_partner_is_too_old() -> None:
    from datetime import timedelta

    from victim_support.rehearsalrecords import Rehearsal, overdue_tenants

    now = datetime(2026, 12, 6, tzinfo=UTC)
    newest = {
        ("goka", "koga"): Rehearsal("goka", "koga", "r1", now - timedelta(days=100), 60.0),
        ("goka", "tsukuba"): Rehearsal("goka", "tsukuba", "r2", now - timedelta(days=10), 60.0),
        ("naka", "koga"): Rehearsal("naka", "koga", "r3", now - timedelta(days=93), 60.0),
    }
    assert overdue_tenants(["goka", "naka", "kasumigaura"], newest, now, 92 * 86400) == {"naka", "kasumigaura"}
    assert overdue_tenants(["naka"], newest, now, 93 * 86400) == set(), "exactly at the limit is not late"
