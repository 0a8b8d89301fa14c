"""The ansible-runner facade, without running Ansible: host outcomes, rotation, refusals, records."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dc.ansible import available_playbooks, host_key_refused, host_results, rotate_runs, run_playbook
from dc.errors import UsageError
from dc.playbook_runs import HostResult, PlaybookResult, latest_runs, load_run, record_run
from dc.state import open_state

# The final stats of a run as ansible-runner returns them (runner.stats).
STATS = {
    "ok": {"db01": 5, "lb01": 4, "hv01": 2, "hv02": 1},
    "changed": {"lb01": 2},
    "failures": {"hv01": 1},
    "dark": {"hv02": 1},
    "skipped": {"db01": 1, "sk01": 3},
    "rescued": {"db01": 1},
    "ignored": {},
    "processed": {"db01": 1, "lb01": 1, "hv01": 1, "hv02": 1, "sk01": 1},
}


def test_host_outcomes_come_from_the_stats() -> None:
    messages = {"hv01": "Within limits: disk free 3%", "hv02": "Disk space: Host key verification failed.", "db01": "x"}
    hosts = {h.host: h for h in host_results(STATS, messages, {"db01": {"load1": 0.5}})}
    assert {name: h.status for name, h in hosts.items()} == {
        "db01": "ok",  # a failure rescued by a block is not a failed host (ansible-runner#726)
        "lb01": "changed",
        "hv01": "failed",
        "hv02": "unreachable",
        "sk01": "skipped",
    }
    assert hosts["db01"].message is None and hosts["db01"].rescued == 1
    assert hosts["db01"].data == {"load1": 0.5}
    assert hosts["hv01"].message == "Within limits: disk free 3%"
    assert (hosts["lb01"].ok, hosts["lb01"].changed) == (4, 2)
    result = _result(list(hosts.values()))
    assert not result.ok
    assert host_key_refused(result) == ["hv02"]
    assert host_results(None, {}) == []


def _result(hosts: list[HostResult], status: str = "failed") -> PlaybookResult:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    return PlaybookResult(
        "20260401T000000Z-health-0000abcd", "health", False, None, status, 2, now, now, 1.0, hosts, ""
    )


def test_results_are_stored_with_hosts_and_without_extravar_values() -> None:
    engine = open_state()
    result = _result(host_results(STATS, {"hv01": "boom"}, {"db01": {"disk_free_pct": 40.0}}))
    result = PlaybookResult(**{**vars(result), "extravar_names": ["fence_reason"]})
    record_run(engine, result)
    loaded = load_run(engine, result.run_id)
    assert loaded is not None
    assert [h.host for h in loaded.hosts] == [h.host for h in result.hosts]
    assert loaded.host("db01").data == {"disk_free_pct": 40.0}
    assert loaded.host("hv01").message == "boom"
    assert loaded.extravar_names == ["fence_reason"]
    assert latest_runs(engine, "health")[0]["ok"] is False
    assert load_run(engine, "nope") is None


def test_only_the_newest_run_directories_are_kept(tmp_path: Path) -> None:
    tmp_path = tmp_path / "runs"
    names = [f"2026040{d}T000000Z-baseline-0000000{d}" for d in range(1, 6)]
    for name in names:
        (tmp_path / name / "artifacts").mkdir(parents=True)
    (tmp_path / "operator-notes").mkdir()  # not ours: never touched
    removed = rotate_runs(tmp_path, 2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [*names[3:], "operator-notes"]


def test_every_playbook_is_shipped_with_a_header_saying_when_it_is_used() -> None:
    playbooks = available_playbooks()
    assert set(playbooks) >= {"baseline", "health", "fence-site", "promote-site", "failback"}
    directory = Path(__file__).resolve().parents[2] / "playbooks"
    for name in playbooks:
        header = (directory / f"{name}.yml").read_text(encoding="utf-8").split("\n- ", 1)[0]
        assert header.startswith(f"# {name}.yml: ") and "# When:" in header, name


@pytest.mark.parametrize("name", ["nope", "../etc/passwd", "baseline.yml/..", "Baseline"])
def test_unknown_playbooks_are_refused_before_anything_runs(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown playbook"):
        run_playbook(name, inventory={"all": {"hosts": {}}}, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_bad_extravar_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid extra variable name"):
        run_playbook("health", inventory={"all": {"hosts": {}}}, extravars={"a b": 1}, runs_dir=tmp_path / "runs")
    assert latest_runs(open_state()) == []
    assert not (tmp_path / "runs").exists()


def test_cli_run_refuses_bad_extra_var_syntax(cli, tmp_path: Path, example_config: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("dc", "run", "health", "--config", str(example_config), "-e", "novalue")
    assert proc.returncode == 2
    assert proc.stderr == "bcpctl: error: invalid --extra-var 'novalue': use KEY=VALUE\n"
    assert not os.path.exists(tmp_path / "home" / "state" / "bcpctl" / "ansible-runs")
