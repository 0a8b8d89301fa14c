"""Alert rules: promtool checks and unit tests, coverage of every rule, names that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring import catalog
from tests.servers.prometheus import PROMTOOL

RULES_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "rules"
RULES = RULES_DIR / "bcpctl.rules.yml"
TESTS = sorted(RULES_DIR.glob("*.test.yml"))
DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "dashboards" / "bcpctl.json"

REQUIRED = {
    "BackupTooOld",
    "ReplicationLagOverRPO",
    "OffsiteSnapshotMissing",
    "RepositoryCheckFailed",
    "DrillFailed",
    "DrillOverdue",
    "RTOOverTarget",
    "HostUnreachable",
    "ExportRequestWaiting",
    "AuditChainBroken",
    "SchedulerJobFailing",
}


def _rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(PROMTOOL) is None:
        raise RuntimeError("promtool not found: run 'make test' (installs the prometheus package)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bbcp_[a-z0-9_]+", expr))


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_rules())} rules found" in result.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("test_file", TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests(test_file: Path) -> None:
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.prometheus
def test_the_unit_tests_can_fail(tmp_path: Path) -> None:
    """A broken rule (BackupTooOld comparing the wrong way) must make promtool fail."""
    # The first comparison in the file is BackupTooOld's age-versus-RPO.
    broken = RULES.read_text().replace("> on (tenant, system) group_left", "< on (tenant, system) group_left", 1)
    assert broken != RULES.read_text()
    (tmp_path / "bcpctl.rules.yml").write_text(broken)
    shutil.copy(RULES_DIR / "bcpctl.rules.test.yml", tmp_path)
    result = _promtool("test", "rules", str(tmp_path / "bcpctl.rules.test.yml"))
    assert result.returncode != 0
    assert "BackupTooOld" in result.stdout + result.stderr


def test_every_required_alert_exists() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert names >= REQUIRED
    assert len(names) == len(_rules()), "alert names must be unique"


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names - firing == set(), "rules never shown firing"
    assert names - quiet == set(), "rules never shown staying quiet"


def test_every_rule_has_severity_and_summary() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = {name for family in catalog.FAMILIES for name in catalog.exposed_names(family)}
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} uses {unknown}"
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) > 20
    for expr in exprs:
        unknown = metric_names(expr) - exported
        assert not unknown, f"dashboard query {expr!r} uses {unknown}"


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "bcpctl-overview"
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "tenant"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
