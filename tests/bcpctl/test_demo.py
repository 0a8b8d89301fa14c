"""``bcpctl demo`` runs the whole continuity story on embedded defaults and reports every step."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import Cli

SCALE = "0.05"  # 5% of each town: fast, for the paths that fail early
#: 20% of each town: enough 要支援者 with 支援措置 in the two affected 町字 that some are withheld
STORY_SCALE = "0.2"


def test_demo_tells_the_whole_story_and_every_step_verifies(cli: Cli, tmp_path: Path) -> None:
    work = tmp_path / "demo"
    result = cli("demo", "--workdir", str(work), "--scale", STORY_SCALE, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["workdir"] == str(work)
    assert len(summary["steps"]) == 13 and all(s["ok"] and s["seconds"] >= 0 for s in summary["steps"])

    backup = summary["backup"]
    assert 0 < backup["bytes_stored"] < backup["bytes_in"]
    assert 0 < backup["incremental_added_bytes"] < backup["bytes_stored"] / 2

    replication = summary["replication"]
    assert replication["objects"] > 0 and replication["bytes"] > 0 and replication["verified_without_key"]

    for run in ("drill", "failover"):
        systems = summary[run]
        # 五霞町's whole list (the 33 業務: 42 systems) and the representative six of the other towns
        assert len(systems) == 48 and all(s["verified"] for s in systems), run
        assert sum(s["tenant"] == "goka" for s in systems) == 42, run
        for s in systems:
            assert 0 < s["rto_seconds"] < s["rto_target_seconds"] and 0 <= s["rpo_seconds"] < s["rpo_target_seconds"]

    export = summary["export"]
    assert export["basis"] == "DMA-49-11-3" and len(export["areas"]) == 2
    assert export["rows"] > 0 and export["excluded_rows"] > 0
    assert export["opened_by_partner"] and export["audit_ok"] and export["opened_with_age_cli"] is True
    assert "persons.csv" in export["files"] and export["requests_match_chain"]
    assert [a["approver"] for a in export["approved_by"]] == ["hitachiomiya-somu-kacho"]
    assert export["approved_by"][0]["credential"].startswith("apk-")
    # つくば市 finds one evacuee by name (hiragana family name) and sends one signed note back
    found = next(s["detail"] for s in summary["steps"] if s["name"].startswith("つくば市 finds"))
    assert found["lookup"].startswith("lk-") and found["shelter"].startswith("つくば市立竹園東小学校")
    assert found["said_by"] == "つくば市 避難所 受付 (tsukuba)" and found["answer_seconds"] == 1.0
    header = (work / "partner" / "received" / "persons.csv").read_text(encoding="utf-8").splitlines()[0]
    assert not [c for c in ("個人番号", "住民票コード", "kojin_bango", "juminhyo_code", "shien_sochi") if c in header]
    assert header.startswith("個人参照")  # Japanese headers; the keys are in the manifest
    assert (work / "partner" / "received" / "persons.xlsx").read_bytes().startswith(b"PK")  # the workbook for Excel

    # The disaster really happened: the whole primary site is gone — repository, control database,
    # passphrase, cache — and nothing afterwards recreated any of it. The offsite serves.
    assert not (work / "primary").exists()
    assert sorted(p.name for p in (work / "offsite" / "live").iterdir()) == sorted(s["system"] for s in systems)
    step = {s["name"].split(":")[0]: s for s in summary["steps"]}
    assert step["disaster"]["detail"]["removed"] == [str(work / "primary")]
    # Nothing of either site's state sits outside its directory: beside them only what people
    # hold (custodians, officials, the partner), the shared configuration and the demo's report.
    assert sorted(p.name for p in work.iterdir()) == [
        "bcpctl.yaml", "cost-sheet.html", "custodians", "officials", "offsite", "partner", "report.html"
    ]  # fmt: skip
    plan = summary["plan"]
    assert plan["name"] == "五霞町" and plan["systems"] == 42 and [g["tier"] for g in plan["groups"]] == [1, 2, 3, 4]
    cost = summary["cost"]
    assert (cost["before_total_yen"], cost["total_yen"], cost["saving_pct"]) == (417_000_000, 287_000_000, 31.2)
    assert "五霞町" in Path(cost["sheet"]).read_text(encoding="utf-8")
    assert "recovery plan of 五霞町: 42 systems" not in result.stdout  # --json: one document only

    # The control state came through the failover: opened at the offsite from the shipped copy.
    control = summary["control_plane"]
    assert control["active_site"] == "offsite" and control["source"] == "restored"
    assert 0 <= control["rpo_seconds"] < 900 and control["audit_verified_across_failover"]
    lost = control["lost_audit_entries"]
    assert lost["count"] is None and lost["after_seq"] >= 4  # 3 approvers enrolled and a token issued at the primary
    assert f"entries after seq {lost['after_seq']} at primary" in lost["statement"]
    assert "control-plane RPO" in lost["statement"] and control["partner_token_valid"]
    assert summary["status"]["active_site"] == "offsite" and summary["status"]["protected"] is False
    assert summary["replication"]["control_copy"]["time"] == control["copy_time"]
    assert (work / "offsite" / "control.db").is_file()
    failover_run = json.loads((Path(summary["reports"]["failover"]).parent / "report.json").read_text("utf-8"))
    assert failover_run["control_plane"]["rpo_seconds"] == control["rpo_seconds"]
    # The Japanese reports: the 訓練実施報告 per municipality, and the bilingual report printed to PDF.
    assert "訓練実施報告" in Path(summary["reports"]["failover ja:goka"]).read_text(encoding="utf-8")
    assert Path(summary["reports"]["failover pdf"]).read_bytes().startswith(b"%PDF-")
    # Each custodian's printable sheet in Japanese (HTML, and PDF by the same Chromium), 0600.
    sheets = sorted((work / "custodians").glob("share-*-of-5.html"))
    assert len(sheets) == 5 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in sheets)
    assert "五霞町 会計管理者" in sheets[3].read_text(encoding="utf-8")
    assert all(p.with_suffix(".pdf").read_bytes().startswith(b"%PDF-") for p in sheets)
    assert {str(p) for p in sheets} <= set(summary["reports"].values())

    report = Path(summary["report_path"])
    html = report.read_text(encoding="utf-8")
    assert "every step passed" in html and "FAILED" not in html and "DMA-49-11-3" in html
    assert "制御状態 Control state" in html and lost["statement"] in html
    assert "復旧計画 Recovery plan of 五霞町 (42 systems)" in html and "裁判員制度" in html
    assert "NO — nothing protects the active site yet" in html

    # Secrets never reach the output: the offsite team's passphrase, the escrow shares.
    secrets = [(work / "offsite" / "secrets" / "passphrase").read_text().strip()]
    secrets.append((work / "partner" / "tsukuba.portal-token").read_text().strip())
    # the failover operator and its approver, the affected town's two export approvers
    approvers = sorted((work / "officials").glob("approver-*"))
    assert len(approvers) == 4 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in approvers)
    secrets += [p.read_text().strip() for p in approvers]  # each official's own approval secret
    secrets += [line for p in (work / "custodians").glob("*.txt") for line in _mnemonics(p)]
    assert secrets[1:], "no escrow shares were written"
    printed = result.stdout + result.stderr + html
    assert not [s for s in secrets if s in printed]

    # The offsite site holds ciphertext only: no 町字 of the export, no seeded record, and nothing
    # of the shipped control state (approvers' names, audit actions, the token's label) appears.
    blob = b"".join(p.read_bytes() for p in (work / "offsite" / "repo").rglob("*") if p.is_file())
    assert blob and not any(area.encode() in blob for area in export["areas"])
    assert "申請書".encode() not in blob
    assert not [t for t in (b"approver.enrolled", b"hitachiomiya-somu-kacho", "防災危機管理課".encode()) if t in blob]


def test_a_failing_step_stops_the_story_and_exits_nonzero(cli: Cli, tmp_path: Path) -> None:
    """A broken ``age`` on the partner's PATH: the export cannot be proven readable, so the demo fails."""
    tools = tmp_path / "bin"
    tools.mkdir()
    broken = tools / "age"
    broken.write_text("#!/bin/sh\necho 'age: no identity matched any of the recipients' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    work = tmp_path / "demo"
    result = cli("demo", "--workdir", str(work), "--scale", SCALE, env={"PATH": f"{tools}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("bcpctl: error: demo step failed: つくば市")
    html = (work / "report.html").read_text(encoding="utf-8")
    assert "a step FAILED" in html


def test_the_demo_refuses_a_directory_that_is_not_empty(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "precious.txt").write_text("keep me")
    result = cli("demo", "--workdir", str(tmp_path / "demo"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("bcpctl: error:")]
    assert len(errors) == 1 and "is not empty" in errors[0] and "Traceback" not in result.stderr
    assert (tmp_path / "demo" / "precious.txt").read_text() == "keep me"


def _mnemonics(share_file: Path) -> list[str]:
    """The mnemonic lines of a share sheet (the words a custodian writes down)."""
    return [line.strip() for line in share_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
