"""The failed-over mode, end to end on real PostgreSQL: failover → status → serve at the offsite
(backups of what runs there, replication to the rebuilt primary) → status → failback → status."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlalchemy import select

from dc.state import backup_runs
from failover.failback import FailbackRequest, execute_failback
from failover.failover import FailoverRequest, execute_failover
from monitoring.runs import job_runs
from storage.url import repository_url_key
from tests.conftest import Cli
from tests.failover.conftest import Built
from tests.failover.test_failover import RecordingHooks
from tests.monitoring.serving import ServeProcess
from tests.monitoring.test_serve import samples

pytestmark = pytest.mark.postgres


def _status(cli: Cli, built: Built) -> dict[str, Any]:
    done = cli("status", "--config", str(built.config_path), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _near(iso: str, when: datetime | None) -> bool:
    assert when is not None
    return abs((datetime.fromisoformat(iso) - when).total_seconds()) < 5


def _serving_config(built: Built, tmp_path: Path) -> Path:
    """The example on a seconds schedule: only backups and replication, the jobs under test."""
    raw = yaml.safe_load(built.config_path.read_text(encoding="utf-8"))
    raw["schedules"] = {"backup": "3s", "replicate": "3s", "check": None, "drill": None, "health": None}
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _serve_until_protected(config: Path, log: Path, systems: int) -> str:
    with ServeProcess(config, log, "--tick", "0.2") as serve:
        serve.wait_role("leader")
        deadline = time.monotonic() + 240
        while True:
            text = serve.metrics()
            protected = samples(text, "bcp_system_protected")
            offsite = {dict(k)["system"] for k in samples(text, "bcp_backup_last_success_timestamp_seconds")
                       if dict(k)["site"] == "offsite"}  # fmt: skip
            if len(offsite) == systems and len(protected) == systems and set(protected.values()) == {1.0}:
                break
            assert time.monotonic() < deadline, f"{protected} {offsite}\n{serve.log_text()[-3000:]}"
            time.sleep(0.5)
        code, _summary = serve.stop()
    assert code == 0
    return text


def test_a_failover_is_known_served_protected_and_ended_by_failback(
    own_example: Built, cli: Cli, tmp_path: Path
) -> None:
    config = own_example.config
    ctx = own_example.context()
    before = _status(cli, own_example)
    assert (before["active_site"], before["failed_over"], before["since"]) == ("primary", False, None)
    assert before["second_copy"]["sites"] == ["offsite"]

    over = execute_failover(
        ctx, FailoverRequest("offsite", confirmed=True), hooks=RecordingHooks(), handle_signals=False
    )
    assert over.status == "passed", over.verdict()

    # -- status at 03:00: production runs at the offsite, and nothing protects it yet
    during = _status(cli, own_example)
    assert (during["active_site"], during["failed_over"], during["run_id"]) == ("offsite", True, over.id)
    assert during["since"].endswith("+00:00") and _near(during["since"], over.finished_at)
    assert during["second_copy"]["sites"] == ["primary"] and during["second_copy"]["protected"] is False
    assert sorted(during["second_copy"]["unprotected"]) == sorted(config.systems)
    for system in during["systems"]:
        assert system["running_at"] == "offsite" and system["protected"] is False, system
        assert system["light"]["level"] == "red"
        first = system["light"]["criteria"][0]
        assert first["name"] == "second_copy" and "unprotected" in first["text"], first
        point = system["recovery_point"]  # the snapshot the failover restored
        assert point["site"] == "offsite" and point["time"] is not None and point["age_seconds"] >= 0
    human = cli("status", "--config", str(own_example.config_path))
    assert human.returncode == 0, human.stderr
    assert "稼働サイト / active site: offsite" in human.stdout and " JST" in human.stdout
    assert "保護なし / UNPROTECTED" in human.stdout and "+00:00" not in human.stdout

    # -- a readiness drill now checks the active site and names what is missing, not "not an empty directory"
    ready = cli("drill", "run", "--config", str(own_example.config_path), "--mode", "readiness", "--json")
    assert "not an empty directory" not in ready.stdout + ready.stderr and "already holds tables" not in ready.stdout
    doc = json.loads(ready.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert doc["site"] == "offsite" and checks["failover targets in use by production"]["ok"]
    assert (
        not checks["second copy of the active site"]["ok"]
        and "primary" in checks["second copy of the active site"]["detail"]
    )
    assert ready.returncode == 1 and "second copy of the active site" in ready.stderr
    assert any("production runs at offsite" in w and "sandboxes" in w for w in doc["warnings"]), doc["warnings"]
    isolated = cli("drill", "run", "--config", str(own_example.config_path), "--tenant", "goka", "--json")
    assert isolated.returncode == 0, isolated.stderr
    drilled = json.loads(isolated.stdout)
    assert drilled["site"] == "offsite" and any("into its sandboxes" in w for w in drilled["warnings"])
    assert all(str(own_example.root / "offsite" / "drill") in s["target"] for s in drilled["systems"]), drilled

    # -- serve at the offsite: the primary's repository is gone with the primary; the rebuilt one gets the copy
    shutil.move(own_example.primary_repo(), own_example.root / "primary" / "repo.lost")
    naka_dr = config.systems["naka-juki"].restore_dsn or ""
    with psycopg.connect(naka_dr, autocommit=True) as conn:
        conn.execute("INSERT INTO residents VALUES (2000001, '避難 一郎', '那珂市')")
    text = _serve_until_protected(_serving_config(own_example, tmp_path), tmp_path / "serve.log", len(config.systems))
    assert samples(text, "bcp_failed_over") == {(("site", "offsite"),): 1.0, (("site", "primary"),): 0.0}
    assert samples(text, "bcp_active_site_since_timestamp_seconds")[(("site", "offsite"),)] > 0
    with ctx.state.connect() as conn:
        backups = conn.execute(select(backup_runs).where(backup_runs.c.started_at > over.declared_at)).all()
        jobs = {row.job_id for row in conn.execute(select(job_runs))}
    offsite_url = repository_url_key(config.sites["offsite"].repository)
    assert backups and {b.repository for b in backups} == {offsite_url}
    # what runs at the offsite is what got backed up: its failover targets, not the lost primary's sources
    naka = [b.source for b in backups if b.system == "naka-juki"]
    assert naka and all(naka_dr.rsplit("/", 1)[-1] in source for source in naka), naka
    assert "replicate:primary" in jobs and "replicate:offsite" not in jobs
    assert (own_example.primary_repo() / "config").exists(), "the rebuilt primary holds the second copy"

    protected = _status(cli, own_example)
    assert protected["active_site"] == "offsite" and protected["second_copy"]["protected"] is True
    for system in protected["systems"]:
        assert system["protected"] and system["second_copy"]["site"] == "primary", system
        assert system["light"]["criteria"][0]["level"] == "green"
        assert datetime.fromisoformat(system["recovery_point"]["time"]) > over.declared_at

    # -- failback ends the failed-over mode
    back = execute_failback(ctx, FailbackRequest(confirmed=True), hooks=RecordingHooks(), handle_signals=False)
    assert back.status == "passed", back.verdict()
    with psycopg.connect(own_example.source_dsn("naka-juki")) as conn:
        assert conn.execute("SELECT name FROM residents WHERE atena_no = 2000001").fetchone() == ("避難 一郎",)
    after = _status(cli, own_example)
    assert (after["active_site"], after["failed_over"], after["run_id"]) == ("primary", False, back.id)
    assert _near(after["since"], back.finished_at) and after["second_copy"]["sites"] == ["offsite"]
    assert all(s["running_at"] == "primary" for s in after["systems"])

    from monitoring.tasks import JobContext, replicate
    from tests.monitoring.conftest import job_spec

    replicate(
        JobContext(ctx.state, config, own_example.config_dir),
        job_spec("replicate:offsite", "replicate", site="offsite"),
    )
    home = _status(cli, own_example)
    assert home["active_site"] == "primary" and home["second_copy"]["protected"] is True
    assert all(s["protected"] and s["light"]["criteria"][0]["name"] == "offsite" for s in home["systems"])
