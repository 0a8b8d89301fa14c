"""A real Prometheus scrapes a real ``bcpctl serve`` and evaluates the shipped rules."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from backup.jobs import backup_systems, site_repository
from tests.monitoring.conftest import build_lab
from tests.monitoring.serving import ServeProcess
from tests.servers.prometheus import start_prometheus

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules" / "bcpctl.rules.yml"
DASHBOARD = ROOT / "monitoring" / "dashboards" / "bcpctl.json"


def _alerts(prom, alertname: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [s["metric"] for s in prom.query(f'ALERTS{{alertname="{alertname}"}}')]


@pytest.mark.prometheus
@pytest.mark.slow
def test_prometheus_scrapes_serve_and_evaluates_the_rules(tmp_path: Path) -> None:
    lab = build_lab(
        tmp_path / "lab",
        {
            "goka-juki": {"tenant": "goka", "rpo": "15m", "schedule": "2s"},
            "naka-juki": {"tenant": "naka", "rpo": "15m", "schedule": "2s"},
            # backed up once before the service starts, due again only in an hour: with a 2 s
            # RPO it is too old almost at once.
            "naka-stale": {"tenant": "naka", "rpo": "2s", "schedule": "1h"},
        },
        schedules={"check": "3s", "health": "2s"},
    )
    config = lab.config
    engine = lab.engine()
    with site_repository(config, "primary", lab.root) as repo:
        (outcome,) = backup_systems(config, repo, ["naka-stale"], state=engine, config_dir=lab.root)
    assert outcome.ok

    with ServeProcess(lab.config_path, tmp_path / "serve.log", "--tick", "0.2") as serve:
        serve.wait_role("leader")
        prom = start_prometheus([serve.target], [RULES])
        try:
            up = prom.wait_for('up{job="bcpctl"} == 1')
            assert up[0]["metric"]["instance"] == serve.target
            # Real backup values arrive, equal to what the service exports.
            result = prom.wait_for('bcp_backup_last_success_timestamp_seconds{system="goka-juki"}')
            stored = float(result[0]["value"][1])
            assert abs(stored - time.time()) < 60
            exported = [
                line
                for line in serve.metrics().splitlines()
                if line.startswith("bcp_backup_last_success_timestamp_seconds{") and 'system="goka-juki"' in line
            ]
            assert exported, "the service stopped exporting the value Prometheus scraped"
            rpo = prom.wait_for('bcp_system_rpo_seconds{system="goka-juki"}')
            assert float(rpo[0]["value"][1]) == 900
            prom.wait_for("bcp_scheduler_leader == 1")
            prom.wait_for('bcp_repository_check_ok{site="primary"} == 1')

            # Rules evaluate against these series: the stale system's backup is too old (pending
            # for its `for: 5m`), the fresh ones are not; the offsite check fails at once
            # (nothing was ever replicated there); no offsite snapshot metric is absent-alerted.
            deadline = time.monotonic() + 30
            while True:
                too_old = _alerts(prom, "BackupTooOld")
                failed = _alerts(prom, "RepositoryCheckFailed")
                missing = _alerts(prom, "OffsiteSnapshotMissing")
                if too_old and failed and missing:
                    break
                assert time.monotonic() < deadline, (too_old, failed, missing, prom.log_tail())
                time.sleep(0.5)
            assert {(a["system"], a["alertstate"]) for a in too_old} == {("naka-stale", "pending")}
            assert {(a["site"], a["alertstate"]) for a in failed} == {("offsite", "firing")}
            assert missing[0]["alertstate"] == "pending"

            groups = prom.api("rules")["groups"]
            evaluated = {rule["name"]: rule for group in groups for rule in group["rules"]}
            shipped = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
            assert len(evaluated) == len(shipped) >= 29 and "ControlPlaneStandbyLagging" in evaluated
            assert all(rule["health"] == "ok" for rule in evaluated.values()), [
                (name, rule.get("lastError")) for name, rule in evaluated.items() if rule["health"] != "ok"
            ]

            # Every dashboard query is valid PromQL for this Prometheus.
            dashboard = json.loads(DASHBOARD.read_text())
            for panel in dashboard["panels"]:
                for target in panel.get("targets", []):
                    prom.query(target["expr"].replace("$tenant", ".*"))  # raises on a bad query
        finally:
            prom.stop()
        code, _summary = serve.stop()
    assert code == 0
