"""Each approval proves its approver: the official's own secret, never just a name on the command line.

Run as an official would (``bcpctl export approve``, ``bcpctl approver enroll``), and as
someone who knows only the names: a missing, wrong or unreadable secret exits 3 and records
nothing; one secret enrolled under two names never makes two people; the audit entry says
who approved, with which credential and as which OS user; no secret is ever printed or stored.
"""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import stat
from pathlib import Path

import yaml

from tests.conftest import Cli
from tests.victim_support.conftest import APPROVER_SECRETS, Site, approver_credentials
from tests.victim_support.test_cli import REQUEST, one_line_error, secret_file


def _state(isolated_env: Path) -> tuple[int, int, list[str]]:
    """Audit entries, decisions and request statuses in the control database."""
    db = sqlite3.connect(isolated_env / "control.db")
    tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    entries = db.execute("select count(*) from audit_log").fetchone()[0] if "audit_log" in tables else 0
    decisions = db.execute("select count(*) from export_decisions").fetchone()[0] if "export_decisions" in tables else 0
    statuses = [r[0] for r in db.execute("select status from export_requests")] if "export_requests" in tables else []
    return entries, decisions, statuses


def _no_secret_anywhere(isolated_env: Path, *outputs: str) -> None:
    stored = b"".join(p.read_bytes() for p in isolated_env.glob("control.db*"))
    for secret in APPROVER_SECRETS.values():
        assert secret.encode() not in stored
        assert all(secret not in text for text in outputs)


def _made(cli: Cli, config: tuple[str, str]) -> str:
    made = cli(*REQUEST, *config, "--json")
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def test_a_missing_wrong_or_unreadable_secret_exits_3_and_records_nothing(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    config = ("--config", str(site.config_path))
    request_id = _made(cli, config)
    before = _state(isolated_env)
    approve = ("export", "approve", request_id, "--approver", "goka-suzuki", *config)
    wrong = tmp_path / "wrong.secret"
    wrong.write_text(APPROVER_SECRETS["goka-tanaka"] + "\n")  # a real secret, of someone else
    outputs = []
    for args, env, message in [
        ((), {}, "no approver secret: set $BCPCTL_APPROVER_SECRET or pass --approver-secret-file"),
        (("--approver-secret-file", str(wrong)), {}, "the secret does not match approver 'goka-suzuki'"),
        (("--approver-secret-file", str(tmp_path / "absent")), {}, "cannot read approver secret file"),
        ((), {"BCPCTL_APPROVER_SECRET": "suzuki-approver-secret-02"}, "does not match"),
        ((), {"BCPCTL_APPROVER_SECRET": "short"}, "does not match"),
    ]:
        done = cli(*approve, *args, env=env)
        one_line_error(done, 3, message)
        outputs += [done.stdout, done.stderr]
        denied = cli(
            "export", "deny", request_id, "--approver", "goka-suzuki", "--reason", "x", *config, *args, env=env
        )
        one_line_error(denied, 3, message)
    assert _state(isolated_env) == before == (1, 0, ["pending"])  # only the request's creation
    _no_secret_anywhere(isolated_env, *outputs)


def test_one_secret_under_two_names_is_one_person(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    from dc.approvers import MIN_COST, enroll

    doc = yaml.safe_load(site.config_path.read_text())
    doc["approvers"]["goka-tanaka"] = enroll(APPROVER_SECRETS["goka-suzuki"], MIN_COST).text()  # suzuki's secret
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    config = ("--config", str(site.config_path))
    request_id = _made(cli, config)
    suzuki = secret_file(tmp_path, "goka-suzuki")
    assert cli("export", "approve", request_id, "--approver", "goka-suzuki", *suzuki, *config).returncode == 0
    before = _state(isolated_env)
    as_tanaka = cli("export", "approve", request_id, "--approver", "goka-tanaka", *suzuki, *config)
    one_line_error(as_tanaka, 2, "this secret is also the credential of goka-suzuki, who already approved")
    assert _state(isolated_env) == before and before[2] == ["pending"]
    # enrolment refuses it in the first place
    enrolled = cli("approver", "enroll", "--approver", "goka-tanaka", "--secret-file", suzuki[1], *config)
    one_line_error(enrolled, 2, "this secret is already enrolled for 'goka-suzuki'")


def test_the_same_credential_under_two_names_is_a_configuration_error(cli: Cli, site: Site) -> None:
    doc = yaml.safe_load(site.config_path.read_text())
    doc["approvers"]["goka-tanaka"] = doc["approvers"]["goka-suzuki"]
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    one_line_error(
        cli("export", "list", "--config", str(site.config_path)), 2, "approvers.goka-tanaka: the same credential"
    )
    doc["approvers"]["goka-tanaka"] = "sha256:" + "0" * 64
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    one_line_error(cli("export", "list", "--config", str(site.config_path)), 2, "not an approver credential")
    cheap = approver_credentials()["goka-tanaka"].replace("m=19456,t=2", "m=1024,t=1")
    doc["approvers"]["goka-tanaka"] = cheap
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    one_line_error(cli("export", "list", "--config", str(site.config_path)), 2, "too cheap")


def test_the_audit_entry_names_approver_credential_and_os_user(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    from dc.approvers import parse_credential

    config = ("--config", str(site.config_path))
    claimed = {"LOGNAME": "somebody-else", "USER": "somebody-else"}  # the environment says anything
    made = cli(*REQUEST, *config, "--json", env=claimed)
    assert made.returncode == 0, made.stderr
    request_id = json.loads(made.stdout)["id"]
    done = cli("export", "approve", request_id, "--approver", "goka-tanaka", *secret_file(tmp_path, "goka-tanaka"),
               *config, env=claimed)  # fmt: skip
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(isolated_env / "control.db")
    actor, details = db.execute("select actor, details from audit_log where action = 'request.approved'").fetchone()
    approval = json.loads(details)["approval"]
    assert actor == approval["approver"] == "goka-tanaka"
    assert approval["credential"] == parse_credential(approver_credentials()["goka-tanaka"]).id
    real = pwd.getpwuid(os.getuid()).pw_name
    assert approval["os_user"] == real
    # the request's free-text --requested-by is bound to who filed it: the real OS account
    (created,) = db.execute("select details from audit_log where action = 'request.created'").fetchone()
    assert json.loads(created)["filed_by"] == f"os:{real}"
    assert approval["request"] == request_id and len(approval["spec"]) == 64 and approval["via"] == "cli"
    _no_secret_anywhere(isolated_env, done.stdout, done.stderr)


def test_enroll_generates_a_private_secret_and_check_accepts_only_it(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    config = ("--config", str(site.config_path))
    secret = tmp_path / "kacho.secret"
    enrolled = cli("approver", "enroll", "--approver", "goka-kacho", "--secret-file", str(secret), "--generate",
                   *config, "--json")  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    result = json.loads(enrolled.stdout)
    assert result["credential"].startswith("approver-v1$argon2id$") and result["credential_id"].startswith("apk-")
    assert secret.read_text().strip() not in enrolled.stdout + enrolled.stderr
    db = sqlite3.connect(isolated_env / "control.db")
    (row,) = db.execute("select actor, subject, details from audit_log where action = 'approver.enrolled'")
    assert row[1] == "goka-kacho" and json.loads(row[2])["credential"] == result["credential_id"]
    again = cli("approver", "enroll", "--approver", "goka-kacho", "--secret-file", str(secret), "--generate", *config)
    one_line_error(again, 2, "exists: --generate never replaces a secret")
    human = cli("approver", "enroll", "--approver", "goka-kacho", *config, env={"BCPCTL_APPROVER_SECRET": "too short"})
    one_line_error(human, 2, "at least 12 characters")

    doc = yaml.safe_load(site.config_path.read_text())
    doc["approvers"]["goka-kacho"] = result["credential"]
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    checked = cli("approver", "check", "--approver", "goka-kacho", "--secret-file", str(secret), *config, "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["credential_id"] == result["credential_id"]
    wrong = cli("approver", "check", "--approver", "goka-kacho", *secret_file(tmp_path, "goka-suzuki"), *config)
    one_line_error(wrong, 3, "does not match approver 'goka-kacho'")
    unknown = cli("approver", "check", "--approver", "nobody", "--secret-file", str(secret), *config)
    one_line_error(unknown, 3, "'nobody' has no enrolled credential")


def test_audit_verify_names_a_request_approved_by_sql(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    config = ("--config", str(site.config_path))
    request_id = _made(cli, config)
    suzuki = secret_file(tmp_path, "goka-suzuki")
    assert cli("export", "approve", request_id, "--approver", "goka-suzuki", *suzuki, *config).returncode == 0
    assert cli("audit", "verify", *config).returncode == 0
    db = sqlite3.connect(isolated_env / "control.db")
    db.execute("update export_requests set status = 'approved'")
    db.commit()
    one_line_error(
        cli("audit", "verify", *config), 1, f"request {request_id} is 'approved' in the database but 'pending'"
    )
    one_line_error(cli("audit", "verify"), 1, f"request {request_id} is 'approved' in the database")  # no config
    report = json.loads(cli("audit", "verify", *config, "--json").stdout)
    assert report["requests"][0]["request"] == request_id and report["signatures_checked"]
    one_line_error(cli("export", "build", request_id, "--out", str(tmp_path / "o"), *config), 1,
                   f"request {request_id} is 'approved' in the database but 'pending'")  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_a_town_with_an_approver_not_yet_enrolled_has_no_export_approved_by_anyone(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    """What ``tenant join`` leaves behind: the town's approvers named, one without a credential."""
    config = ("--config", str(site.config_path))
    request_id = _made(cli, config)
    raw = yaml.safe_load(site.config_path.read_text())
    raw["exports"]["tenants"]["goka"]["approvers"].append("goka-newcomer")
    site.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    before = _state(isolated_env)
    for approver, extra in [("goka-suzuki", ()), ("pref-bosai", ("--reason", "町役場が被災"))]:
        done = cli("export", "approve", request_id, "--approver", approver, *extra, *config,
                   *secret_file(tmp_path, approver))  # fmt: skip
        one_line_error(done, 2, "until its approvers are enrolled (goka-newcomer)")
    assert _state(isolated_env) == before
    raw["exports"]["tenants"]["goka"]["approvers"].remove("goka-newcomer")  # as once it is enrolled
    site.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    done = cli(
        "export", "approve", request_id, "--approver", "goka-suzuki", *config, *secret_file(tmp_path, "goka-suzuki")
    )
    assert done.returncode == 0, done.stderr
