"""``bcpctl serve`` as operators run it: the example consortium on a schedule, signals, logs."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select

from backup.opening import init_repository
from bcpctl.demo import demo_config
from dc.state import backup_runs, open_state
from monitoring.lease import RELEASED, scheduler_lease, scheduler_terms
from monitoring.runs import job_runs
from storage.url import open_backend
from tests.conftest import PASSWORD, Cli
from tests.monitoring.conftest import CHEAP_KDF, build_lab, seed_sqlite
from tests.monitoring.serving import ServeProcess
from tests.servers.sshd import SshServer, cleanup, start_sshd


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def example_consortium(workdir: Path, hv01: SshServer) -> Path:
    """examples/ibaraki.yaml moved into ``workdir`` (as ``bcpctl demo`` does), on a seconds schedule.

    hv01 is a real sshd whose host key the sites' known_hosts pins; the other hosts answer
    nothing. Blackouts and the steady-state probe are dropped so the test does not depend on
    the calendar or on a PostgreSQL at 127.0.0.1:5432.
    """
    raw = demo_config(workdir, "representative")
    for site in raw["sites"].values():  # one control database and one passphrase file for this test
        site.pop("control_db")
        site.pop("password_file")
    raw["control_db"] = f"sqlite:///{workdir / 'control.db'}"
    raw["secrets"] = {"password_file": str(workdir / "secrets" / "passphrase")}
    raw["schedules"] = {"backup": "3s", "check": "4s", "health": "2s", "replicate": "3s", "drill": "8s"}
    raw["drills"] = {"max_age": "30d", "report_dir": str(workdir / "reports")}
    raw["hosts"]["hv01"].update(address=hv01.address, port=hv01.port, user=hv01.user, key_file=str(hv01.client_key))
    Path(raw["sites"]["primary"]["known_hosts"]).write_text(hv01.known_hosts_line + "\n")
    (workdir / "secrets").mkdir(parents=True)
    (workdir / "secrets" / "passphrase").write_text(PASSWORD + "\n")
    for system in raw["systems"].values():
        path = Path(system["source"]["path"])
        if system["source"]["kind"] == "sqlite":
            seed_sqlite(path, 50)
        else:
            path.mkdir(parents=True)
            (path / "gaiji.txt").write_text("𠮷野家\n" * 100)
    init_repository(open_backend(raw["sites"]["primary"]["repository"], create=True), PASSWORD, kdf=CHEAP_KDF)
    config = workdir / "bcpctl.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    open_state(raw["control_db"], create=True).dispose()  # as bcpctl db upgrade installs it
    return config


@pytest.mark.slow
@pytest.mark.sshd
def test_serve_runs_the_example_consortium_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    hv01 = start_sshd(tmp_path / "sshd", address="127.0.1.11")  # hv01's loopback address in the example
    try:
        config = example_consortium(tmp_path / "work", hv01)
        raw = yaml.safe_load(config.read_text())
        systems = raw["systems"]
        with ServeProcess(config, tmp_path / "serve.log", "--log-format", "json", "--tick", "0.2") as serve:
            serve.wait_role("leader")
            assert serve.get("/healthz")[0] == 200
            deadline = time.monotonic() + 90
            while True:
                text = serve.metrics()
                done = samples(text, "bcp_backup_last_success_timestamp_seconds")
                checked = samples(text, "bcp_repository_check_ok")
                hosts = samples(text, "bcp_host_up")
                offsite = samples(text, "bcp_offsite_newest_snapshot_timestamp_seconds")
                drilled = samples(text, "bcp_drill_last_ok")
                # A drill that runs before the first replication has carried a system's snapshot
                # offsite fails (rightly: the offsite cannot bring it back yet); the next one passes.
                if (
                    len(done) == len(offsite) == len(drilled) == len(systems)
                    and set(drilled.values()) == {1.0}
                    and set(checked.values()) == {1.0}
                    and len(checked) == 2
                    and len(hosts) == 6
                    and samples(text, "bcp_audit_chain_ok")
                ):
                    break
                assert time.monotonic() < deadline, (
                    f"not all jobs ran: {len(done)} backups, {len(offsite)} offsite, {drilled}, {checked}, {hosts}"
                )
                time.sleep(0.5)
            code, summary = serve.stop()
    finally:
        cleanup(hv01)
    assert code == 0
    assert summary == {"holder": summary["holder"], "listen": serve.target, "led": True, "cancelled_jobs": 0}
    assert {dict(k)["system"] for k in done} == set(systems)
    assert set(drilled.values()) == {1.0}, drilled
    assert set(samples(text, "bcp_drill_overdue").values()) == {0.0}
    up = {dict(k)["host"]: (v, dict(k)["probe"]) for k, v in hosts.items()}
    assert up.pop("hv01") == (1, "ssh")
    assert {v for v, _probe in up.values()} == {0}  # nothing answers at the other hosts' addresses
    assert set(samples(text, "bcp_host_maintenance").values()) == {0.0}
    assert samples(text, "bcp_audit_chain_ok") == {(): 1.0}
    assert samples(text, "bcp_export_requests")[(("state", "pending"),)] == 0
    rpo = samples(text, "bcp_system_rpo_seconds")
    assert rpo[(("system", "goka-juki"), ("tenant", "goka"))] == 900
    assert set(samples(text, "bcp_metrics_source_ok").values()) == {1.0}

    engine = create_engine(raw["control_db"])
    with engine.connect() as conn:
        runs = conn.execute(select(job_runs)).all()
        terms = conn.execute(select(scheduler_terms)).all()
        lease = conn.execute(select(scheduler_lease)).one()
        backups = conn.execute(select(backup_runs)).all()
    assert runs and not [r for r in runs if r.status == "running"]
    assert {r.status for r in runs if r.job_id.startswith("backup:")} <= {"ok", "cancelled"}
    assert {r.job_id.split(":")[0] for r in runs if r.status == "ok"} == {
        "backup",
        "check",
        "health",
        "replicate",
        "drill",
    }
    assert [(t.end_reason is not None) for t in terms] == [True]
    assert lease.expires_at == RELEASED  # released on a clean stop: a standby may take over at once
    assert all(b.ok for b in backups)

    records = [json.loads(line) for line in serve.log_text().splitlines()]  # every line is one JSON document
    backup_done = [r for r in records if r.get("kind") == "backup" and r.get("status") == "ok"]
    assert backup_done
    assert {"job", "system", "tenant", "site", "run_id", "seconds"} <= set(backup_done[0])
    assert PASSWORD not in serve.log_text()


def _stop_during_a_backup(tmp_path: Path, seconds: int, stop_timeout: float):  # type: ignore[no-untyped-def]
    """Start serve with one backup that takes ``seconds``, SIGTERM it mid-run; return what happened."""
    command = f"sh -c 'sleep {seconds}; echo data'"
    lab = build_lab(
        tmp_path / "lab",
        {"busy": {"tenant": "goka", "schedule": "1s", "source": {"kind": "command", "command": command}}},
    )
    engine = lab.engine()
    args = ("--tick", "0.2", "--stop-timeout", str(stop_timeout))
    with ServeProcess(lab.config_path, tmp_path / "serve.log", *args) as serve:
        serve.wait_role("leader")
        running = _wait_running(engine, "backup:busy")
        stopped_at = time.monotonic()
        code, summary = serve.stop()
        waited = time.monotonic() - stopped_at
    with engine.connect() as conn:
        row = conn.execute(select(job_runs).where(job_runs.c.run_id == running)).one()
        later = conn.execute(select(job_runs).where(job_runs.c.started_at > row.started_at)).all()
    return code, summary, waited, row, later, serve.log_text()


@pytest.mark.slow
def test_sigterm_lets_a_running_job_finish(tmp_path: Path) -> None:
    code, summary, waited, row, later, _log = _stop_during_a_backup(tmp_path, 2, stop_timeout=30)
    assert code == 0 and summary["cancelled_jobs"] == 0
    assert waited > 0.5, "serve exited without waiting for the running backup"
    assert row.status == "ok"
    assert [r.status for r in later] in ([], ["cancelled"]), "no new run may start after SIGTERM"


@pytest.mark.slow
def test_sigterm_past_the_stop_timeout_records_the_job_cancelled(tmp_path: Path) -> None:
    code, summary, waited, row, _later, log = _stop_during_a_backup(tmp_path, 6, stop_timeout=0.5)
    assert code == 0 and summary["cancelled_jobs"] == 1
    assert waited < 5
    assert row.status == "cancelled" and "stopped before the job finished" in row.error
    assert "cancelled" in log


def _wait_running(engine, job_id: str, timeout: float = 20) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    select(job_runs.c.run_id).where(job_runs.c.job_id == job_id, job_runs.c.status == "running")
                ).first()
        except Exception:
            row = None  # the table appears when the service starts
        if row:
            return row.run_id
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never ran")


def test_bad_invocations_fail_with_one_line_and_store_nothing(cli: Cli, tmp_path: Path, isolated_env: Path) -> None:
    lab = build_lab(tmp_path / "lab", {"goka-juki": {"tenant": "goka", "rpo": "15m"}})
    control = isolated_env / "control.db"
    installed = control.read_bytes()
    result = cli("serve", "--config", str(lab.config_path), "--listen", "nowhere")
    assert result.returncode == 2 and "invalid --listen 'nowhere'" in result.stderr
    result = cli("serve", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "configuration file not found" in result.stderr
    lab.raw["systems"]["goka-juki"]["schedule"] = "every day"
    lab.write()
    result = cli("serve", "--config", str(lab.config_path))
    assert result.returncode == 2
    assert "systems.goka-juki.schedule: 'every day' is neither a duration" in result.stderr
    lab.raw["systems"]["goka-juki"]["schedule"] = "15m"
    lab.write()
    result = cli("serve", "--config", str(lab.config_path), env={"BCPCTL_PASSWORD": ""})
    assert result.returncode == 2 and "no passphrase" in result.stderr
    for result_text in (result.stderr,):
        assert len(result_text.strip().splitlines()) == 1
    result = cli("serve", "--config", str(lab.config_path), "--host", "db1")
    assert result.returncode == 2 and result.stderr.strip() == (
        "bcpctl: error: --host needs --queue: only queued backups are routed to a host"
    )
    result = cli("serve", "--config", str(lab.config_path), "--queue", "--host", "db1")
    assert result.returncode == 2
    assert result.stderr.strip() == "bcpctl: error: --host db1: not a host of the configuration (known: none)"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("serve", "--config", str(lab.config_path), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.strip() == f"bcpctl: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert control.read_bytes() == installed and not control.with_name("control.db-wal").exists(), (
        "a refused start must not write to the control database"
    )


@pytest.mark.slow
def test_ctrl_c_stops_serve_like_sigterm(tmp_path: Path) -> None:
    lab = build_lab(tmp_path / "lab", {})
    with ServeProcess(lab.config_path, tmp_path / "serve.log", "--tick", "0.2") as serve:
        serve.wait_role("leader")
        code, summary = serve.stop(signum=signal.SIGINT)
    assert code == 0, serve.log_text()[-2000:]
    assert summary == {"holder": summary["holder"], "listen": serve.target, "led": True, "cancelled_jobs": 0}
    with lab.engine().connect() as conn:
        assert conn.execute(select(scheduler_lease.c.expires_at)).scalar_one() == RELEASED
