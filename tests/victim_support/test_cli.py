"""The commands as operators and partners run them: exit codes, one-line errors, nothing half-done."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import yaml

from tests.conftest import Cli
from tests.victim_support.conftest import APPROVER_SECRETS, Site

REQUEST = (
    "export", "request", "--partner", "koga", "--tenant", "goka", "--disaster-id", "2026-kanto-eq",
    "--disaster-date", "2026-11-20", "--basis", "APPI-69-2-3", "--purpose", "EVACUEE_IDENTIFICATION",
    "--purpose", "SAFETY_CONFIRMATION", "--field", "name,name_kana,birth_date,sex,address", "--all-areas",
    "--format", "cp932", "--format", "pfif", "--requested-by", "koga-yamada",
)  # fmt: skip


def one_line_error(done, code: int, text: str) -> None:  # type: ignore[no-untyped-def]
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: ") and text in lines[0], done.stderr


def secret_file(tmp_path: Path, approver: str) -> tuple[str, str]:
    """``--approver-secret-file FILE`` holding ``approver``'s own secret."""
    path = tmp_path / f"{approver}.secret"
    path.write_text(APPROVER_SECRETS[approver] + "\n")
    path.chmod(0o600)
    return ("--approver-secret-file", str(path))


def control_db(isolated_env: Path) -> sqlite3.Connection:
    return sqlite3.connect(isolated_env / "control.db")


def test_request_approve_build_open_and_audit(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    config = ("--config", str(site.config_path))
    rejected = cli(*REQUEST[:-2], "--field", "個人番号", "--requested-by", "koga-yamada", *config)
    one_line_error(rejected, 2, "個人番号 is never exported")

    made = cli(*REQUEST, *config, "--json")
    assert made.returncode == 0, made.stderr
    request_id = json.loads(made.stdout)["id"]
    assert json.loads(made.stdout)["status"] == "pending"
    assert json.loads(made.stdout)["fields"][:4] == ["person_ref", "household_ref", "name", "name_fallback"]

    out = tmp_path / "bundles"
    one_line_error(cli("export", "build", request_id, "--out", str(out), *config), 2, "only approved requests")
    assert not out.exists()
    one_line_error(cli("export", "approve", request_id, "--approver", "mallory", *config), 2, "not an approver")
    suzuki = secret_file(tmp_path, "goka-suzuki")
    assert cli("export", "approve", request_id, "--approver", "goka-suzuki", *suzuki, *config).returncode == 0
    one_line_error(
        cli("export", "approve", request_id, "--approver", "goka-suzuki", *suzuki, *config), 2, "already approved"
    )
    bosai = secret_file(tmp_path, "pref-bosai")
    one_line_error(
        cli("export", "approve", request_id, "--approver", "pref-bosai", *bosai, *config), 2, "must give --reason"
    )
    approved = cli("export", "approve", request_id, "--approver", "pref-bosai", "--reason", "町役場被災", *config,
                   "--json", env={"BCPCTL_APPROVER_SECRET": APPROVER_SECRETS["pref-bosai"]})  # fmt: skip
    assert json.loads(approved.stdout)["status"] == "approved"

    shutil.rmtree(site.primary)  # the build reads the replica
    built = cli("export", "build", request_id, "--out", str(out), *config, "--json")
    assert built.returncode == 0, built.stderr
    result = json.loads(built.stdout)
    assert result["site"] == "offsite" and result["replication_lag"] == "unknown"
    bundle = Path(result["bundle"])

    opened = cli("export", "open", str(bundle), "--identity", str(site.partner_key), "--verify-key",
                 str(site.root / "goka-sign.pub"), "--out", str(tmp_path / "opened"), "--json")  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["counts"]["rows"] == result["rows"]
    assert (tmp_path / "opened" / "persons.csv").exists()

    listed = json.loads(cli("export", "list", *config, "--json").stdout)
    assert [(r["id"], r["status"], r["builds"]) for r in listed] == [(request_id, "approved", 1)]

    verified = cli("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["entries"] == 6  # rejected, created, 2 approvals, built, opened
    actions = [r[0] for r in control_db(isolated_env).execute("select action from audit_log order by seq")]
    assert actions == ["request.rejected", "request.created", "request.approved", "request.approved",
                       "bundle.built", "bundle.opened"]  # fmt: skip
    anchor = json.loads((bundle / "envelope.json").read_text())["audit_anchor"]
    assert cli("audit", "verify", "--anchor", f"{anchor['seq']}:{anchor['hash']}").returncode == 0

    db = control_db(isolated_env)
    db.execute("update audit_log set actor = 'someone-else' where seq = 3")
    db.commit()
    one_line_error(cli("audit", "verify"), 1, "audit log broken at entry 3")


def test_partner_side_refusals(cli: Cli, site: Site, tmp_path: Path) -> None:
    from tests.victim_support.flow import approved_request, build

    bundle = build(site, approved_request(site, formats=())).bundle
    common = ("--verify-key", site.verify_key)
    one_line_error(
        cli("export", "open", str(bundle), "--identity", str(site.other_key), *common, "--out", str(tmp_path / "a")),
        3,
        "not to this identity",
    )
    envelope = json.loads((bundle / "envelope.json").read_text())
    envelope["expires_at"] = "2099-01-01T00:00:00+00:00"  # try to extend the retention
    (bundle / "envelope.json").write_text(json.dumps(envelope))
    one_line_error(
        cli("export", "open", str(bundle), "--identity", str(site.partner_key), *common, "--out", str(tmp_path / "b")),
        3,
        "signature does not verify",
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    refusals = cli("audit", "verify", "--json")
    assert json.loads(refusals.stdout)["entries"] == 2  # both refusals recorded on the partner's side


def test_bad_input_changes_nothing(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    config = ("--config", str(site.config_path))
    one_line_error(cli("export", "approve", "exp-nope", "--approver", "goka-suzuki", *config), 2, "no export request")
    one_line_error(cli(*REQUEST[:3], "nowhere", *REQUEST[4:], *config), 2, "unknown partner 'nowhere'")
    one_line_error(cli("export", "build", "x", "--out", str(tmp_path), "--config", str(tmp_path / "none.yaml")), 2,
                   "configuration file not found")  # fmt: skip
    doc = yaml.safe_load(site.config_path.read_text())
    doc["exports"]["approvals"] = {"APPI-69-2-3": "two"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True))
    one_line_error(cli("export", "list", "--config", str(bad)), 2, f"{bad}: exports.approvals.APPI-69-2-3")
    one_line_error(cli("audit", "verify", "--anchor", "zz"), 2, "invalid anchor")
    tables = {r[0] for r in control_db(isolated_env).execute("select name from sqlite_master where type='table'")}
    if "export_requests" in tables:
        assert control_db(isolated_env).execute("select count(*) from export_requests").fetchone()[0] == 0
    if "audit_log" in tables:
        assert control_db(isolated_env).execute("select count(*) from audit_log").fetchone()[0] == 0


def test_registry_seed_command(cli: Cli, site: Site, tmp_path: Path) -> None:
    done = cli(
        "registry", "seed", "--config", str(site.config_path), "--scale", "0.01", "--out", str(tmp_path), "--json"
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["tenant"] == "goka" and row["target"] == str(tmp_path / "goka.sqlite")
    assert row["counts"]["residents"] == 94
    into_config = cli("registry", "seed", "--config", str(site.config_path), "--scale", "0.01", "--json")
    assert json.loads(into_config.stdout)[0]["target"] == str(site.registry)
    one_line_error(cli("registry", "seed", "--config", str(site.config_path), "--tenant", "mito"), 2, "unknown tenant")


def test_build_from_a_really_replicated_offsite(cli: Cli, site: Site, tmp_path: Path) -> None:
    """The offsite filled by ``bcpctl replicate`` (ciphertext only, no passphrase) serves the export."""
    from tests.victim_support.flow import approved_request

    shutil.rmtree(site.offsite)
    replicated = cli("replicate", "--config", str(site.config_path), env={"BCPCTL_PASSWORD": ""})
    assert replicated.returncode == 0, replicated.stderr
    request_id = approved_request(site, formats=())
    shutil.rmtree(site.primary)
    control = {"BCPCTL_CONTROL_DB": f"sqlite:///{site.root / 'control.db'}"}  # where flow.py filed the request
    built = cli("export", "build", request_id, "--config", str(site.config_path), "--out", str(tmp_path), "--json",
                env=control)  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["replication_lag"] == "unknown"
    assert json.loads(built.stdout)["rows"] > 0
