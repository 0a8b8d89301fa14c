"""Failover and failback on real PostgreSQL: order of hooks, production targets, no lost writes."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dc.clock import utcnow
from dc.state import open_state
from failover.context import RunContext
from failover.errors import ConfirmationRequired, FailoverRefused
from failover.failback import FailbackRequest, execute_failback
from failover.failover import FailoverRequest, execute_failover
from failover.hooks import AnsibleHooks, HookResult, fence_allows_failover
from failover.records import active_failover, list_runs
from tests.conftest import Cli
from tests.failover.conftest import Built

pytestmark = pytest.mark.postgres


class RecordingHooks:
    """The Hooks protocol for tests: records every call, fails the actions it is told to."""

    def __init__(self, fail: dict[str, dict[str, str]] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or {}

    def _do(self, action: str, site: str) -> HookResult:
        self.calls.append((action, site))
        hosts = self.fail.get(action, {"db01": "changed"})
        ok = all(s not in ("failed", "unreachable") for s in hosts.values())
        return HookResult(action, site, ok, f"{action} {site}", dict(hosts))

    def fence(self, site: str, run_id: str) -> HookResult:
        return self._do("fence", site)

    def promote(self, site: str, run_id: str) -> HookResult:
        return self._do("promote", site)

    def failback(self, site: str, run_id: str) -> HookResult:
        return self._do("failback", site)

    def unfence(self, site: str, run_id: str) -> HookResult:
        return self._do("unfence", site)


def _rows(dsn: str, where: str = "atena_no >= 2000000") -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT atena_no, name FROM residents WHERE {where} ORDER BY 1").fetchall()


def test_failover_then_failback_loses_no_row_written_at_the_offsite(own_example: Built) -> None:
    ctx = own_example.context()
    config = own_example.config
    # Lifting the offsite's fence at the very end fails: the primary serves anyway, the report says so.
    hooks = RecordingHooks(fail={"unfence": {"o-db": "unreachable"}})
    over = execute_failover(ctx, FailoverRequest("offsite", confirmed=True), hooks=hooks, handle_signals=False)
    assert over.status == "passed", over.verdict()
    assert hooks.calls == [("fence", "primary"), ("promote", "offsite")]
    assert all(s.rto_met and s.rpo_met for s in over.systems)
    assert active_failover(ctx.state) is not None

    # The offsite site serves: residents move in and a form is scanned while the primary is down.
    naka_dr = config.systems["naka-juki"].restore_dsn or ""
    with psycopg.connect(naka_dr, autocommit=True) as conn:
        conn.execute("INSERT INTO residents VALUES (2000001, '避難 一郎', '那珂市'), (2000002, '避難 花子', '那珂市')")
    goka_dr = Path(config.systems["goka-juki"].restore_dir or "") / "goka-juki.sqlite"
    with sqlite3.connect(goka_dr) as lite:
        lite.execute("INSERT INTO residents VALUES (2000003, '転入 次郎', '五霞町')")
    gaiji_dr = Path(config.systems["kasumigaura-gaiji"].restore_dir or "")
    (gaiji_dr / "gaiji-new.txt").write_text("災害時に登録した外字", encoding="utf-8")
    assert _rows(own_example.source_dsn("naka-juki")) == []

    back = execute_failback(ctx, FailbackRequest(confirmed=True), hooks=hooks, handle_signals=False)
    assert back.status == "passed", back.verdict()
    assert hooks.calls[2:] == [("fence", "offsite"), ("failback", "primary"), ("unfence", "offsite")]
    assert any(w.startswith("offsite stays fenced (unfence offsite)") for w in back.warnings), back.warnings
    assert _rows(own_example.source_dsn("naka-juki")) == [(2000001, "避難 一郎"), (2000002, "避難 花子")]
    goka_primary = Path(config.systems["goka-juki"].source.path or "")
    with sqlite3.connect(goka_primary) as lite:
        assert lite.execute("SELECT name FROM residents WHERE atena_no = 2000003").fetchone() == ("転入 次郎",)
    gaiji_primary = Path(config.systems["kasumigaura-gaiji"].source.path or "")
    assert (gaiji_primary / "gaiji-new.txt").read_text(encoding="utf-8") == "災害時に登録した外字"
    # The primary's previous data is kept, never dropped, and the staging sandboxes are gone.
    assert any("before_failback" in w for w in back.warnings)
    assert gaiji_primary.with_name(f"{gaiji_primary.name}.before-failback-{back.id.rsplit('-', 1)[-1]}").is_dir()
    assert back.cleanup is not None and back.cleanup.ok
    assert not [d for d in own_example.sandbox_databases() if back.id.rsplit("-", 1)[-1] in d]
    assert active_failover(ctx.state) is None
    with pytest.raises(FailoverRefused, match="no failover is active"):
        execute_failback(ctx, FailbackRequest(confirmed=True), hooks=hooks, handle_signals=False)


def test_failover_refuses_before_changing_anything(example: Built) -> None:
    ctx = example.context()
    hooks = RecordingHooks()
    with pytest.raises(ConfirmationRequired, match="--yes"):
        execute_failover(ctx, FailoverRequest("offsite"), hooks=hooks, handle_signals=False)
    with pytest.raises(FailoverRefused, match="is the primary"):
        execute_failover(ctx, FailoverRequest("primary", confirmed=True), hooks=hooks, handle_signals=False)
    busy = example.config.systems["naka-kaigo"].restore_dsn or ""
    example.server.create_database(busy.rsplit("/", 1)[-1])
    with psycopg.connect(busy, autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (x int)")
    try:
        with pytest.raises(FailoverRefused, match="already holds tables"):
            execute_failover(ctx, FailoverRequest("offsite", confirmed=True), hooks=hooks, handle_signals=False)
    finally:
        with psycopg.connect(busy, autocommit=True) as conn:
            conn.execute("DROP TABLE leftover")
    assert hooks.calls == [] and list_runs(ctx.state) == []


def test_a_failed_fence_restores_nothing(example: Built) -> None:
    """A primary that answers and is not fenced: refused (exit 1) before the control state is promoted."""
    ctx = example.context()
    hooks = RecordingHooks(fail={"fence": {"db01": "failed", "lb01": "ok"}})
    with pytest.raises(FailoverRefused, match="primary still answers and is not fenced") as refused:
        execute_failover(ctx, FailoverRequest("offsite", confirmed=True), hooks=hooks, handle_signals=False)
    assert refused.value.exit_code == 1 and "nothing was restored" in refused.value.message
    assert hooks.calls == [("fence", "primary")] and list_runs(ctx.state) == []
    target = example.config.systems["naka-juki"].restore_dsn or ""
    with psycopg.connect(example.server.dsn(), autocommit=True) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.rsplit("/", 1)[-1],)).fetchone()
            is None
        )
    assert active_failover(ctx.state) is None


def test_fence_policy_accepts_a_dead_site_but_not_a_failing_host() -> None:
    dead = HookResult("fence", "primary", False, "", {"db01": "unreachable", "lb01": "unreachable"})
    failing = HookResult("fence", "primary", False, "", {"db01": "failed", "lb01": "unreachable"})
    assert fence_allows_failover(dead, planned=False)
    assert not fence_allows_failover(dead, planned=True), "a planned switchover needs a complete fence"
    assert not fence_allows_failover(failing, planned=False)
    assert not fence_allows_failover(HookResult("fence", "primary", False, "no hosts"), planned=False)


def test_ansible_hooks_call_the_playbooks_with_the_site(monkeypatch: pytest.MonkeyPatch, example: Built) -> None:
    """dc/ansible.py is not on main yet: a stand-in module with its signature checks the adapter."""
    seen: list[dict[str, Any]] = []

    def run_playbook(name: str, *, inventory: dict[str, Any], limit: str | None = None, check: bool = False,
                     extravars: dict[str, Any] | None = None, state: Any = None) -> Any:  # fmt: skip
        seen.append({"name": name, "extravars": extravars, "inventory": inventory})
        hosts = [types.SimpleNamespace(host="db01", status="changed", message=None)]
        if name == "promote-site":
            hosts.append(types.SimpleNamespace(host="lb01", status="failed", message="haproxy reload failed"))
        ok = name != "promote-site"
        return types.SimpleNamespace(
            ok=ok, status="successful" if ok else "failed", error=None, hosts=hosts, run_id="r1"
        )

    ansible = types.ModuleType("dc.ansible")
    ansible.run_playbook = run_playbook  # type: ignore[attr-defined]
    inventory = types.ModuleType("dc.inventory")
    inventory.build_inventory = lambda config, config_dir=None: {"all": {"hosts": sorted(config.hosts)}}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dc.ansible", ansible)
    monkeypatch.setitem(sys.modules, "dc.inventory", inventory)

    hooks = AnsibleHooks(example.config, example.config_dir)
    fence = hooks.fence("primary", "run-1")
    promote = hooks.promote("offsite", "run-1")
    back = hooks.failback("primary", "run-2")
    lifted = hooks.unfence("offsite", "run-2")
    assert [s["name"] for s in seen] == ["fence-site", "promote-site", "failback", "unfence-site"]
    assert seen[3]["extravars"] == {"unfence_site": "offsite", "failover_id": "run-2"}
    assert seen[0]["extravars"] == {"fence_site": "primary", "failover_id": "run-1"}
    assert seen[1]["extravars"] == {"promote_site": "offsite", "failover_id": "run-1"}
    assert seen[2]["extravars"] == {"failback_site": "primary", "failover_id": "run-2"}
    assert "hv01" in seen[0]["inventory"]["all"]["hosts"]
    assert fence.ok and fence.hosts == {"db01": "changed"} and back.ok and lifted.ok
    assert not promote.ok and promote.failed_hosts == ["lb01"] and "haproxy reload failed" in promote.detail


def test_cli_refusals_and_plan(example: Built, cli: Cli) -> None:
    config = str(example.config_path)
    nowhere = cli("failover", "execute", "--config", config, "--to", "offsite", "--yes")
    assert nowhere.returncode == 2 and "--site offsite" in nowhere.stderr and nowhere.stderr.count("\n") == 1
    no = cli("failover", "execute", "--config", config, "--to", "offsite", "--site", "offsite")
    assert no.returncode == 2 and "--yes" in no.stderr and no.stderr.count("\n") == 1
    plan = cli("failover", "plan", "--config", config, "--json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert [g["tier"] for g in doc["groups"]] == [1, 2, 3]
    zei = next(s for g in doc["groups"] for s in g["systems"] if s["system"] == "hitachiomiya-zei")
    assert zei["depends_on"] == ["hitachiomiya-juki"] and zei["rpo_target"] == 3600
    assert zei["newest_offsite"]["within_rpo"] is True and zei["newest_offsite"]["age_seconds"] >= 0
    human = cli("failover", "plan", "--config", config)
    assert human.returncode == 0 and "group 1 (tier 1)" in human.stdout


def test_switchover_drill_round_trip_via_cli(own_example: Built, cli: Cli) -> None:
    config = str(own_example.config_path)
    no = cli("drill", "run", "--config", config, "--mode", "switchover")
    assert no.returncode == 2 and "--yes" in no.stderr
    done = cli("drill", "run", "--config", config, "--mode", "switchover", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["mode"] == "switchover" and doc["status"] == "passed"
    assert [c["ok"] for c in doc["checks"]] == [True, True]
    assert [h["action"] for h in doc["hooks"]] == ["fence", "promote", "fence", "failback", "unfence"]
    assert all("manual" in h["detail"] for h in doc["hooks"])
    listed = json.loads(cli("drill", "list", "--json").stdout)
    assert [r["kind"] for r in listed] == ["failback", "failover", "drill"]  # newest declared first


def test_missing_ansible_runner_is_a_failed_hook_not_a_crash(monkeypatch: pytest.MonkeyPatch, example: Built) -> None:
    monkeypatch.setitem(sys.modules, "dc.ansible", None)  # import of dc.ansible raises ImportError
    result = AnsibleHooks(example.config, example.config_dir).fence("primary", "run-1")
    assert not result.ok and "Ansible hooks unavailable" in result.detail
    assert not fence_allows_failover(result, planned=False)


SECRETS = {"sato": "sato-approver-secret-1", "ito": "ito-approver-secret-01", "tanaka": "tanaka-operator-0001"}
#: the operator proves who they are with their own enrolled credential (the two-person rule)
OPERATOR = {"operator": "tanaka", "operator_secret": SECRETS["tanaka"]}


def _two_person(config: Any) -> Any:
    """``config`` with a two-person failover rule and the approvers' enrolled credentials."""
    from dc.approvers import MIN_COST, enroll

    credentials = {name: enroll(secret, MIN_COST).text() for name, secret in SECRETS.items()}
    drills = {**config.drills, "failover": {"two_person": True, "approvers": ["sato", "ito"], "hooks": "manual"}}
    return config.model_copy(update={"approvers": credentials, "drills": drills})


def test_two_person_rule_on_the_command_line(example: Built, cli: Cli, tmp_path: Path) -> None:
    import yaml

    raw = yaml.safe_load(example.config_path.read_text(encoding="utf-8"))
    config = _two_person(example.config)
    raw["drills"]["failover"] = config.drills["failover"]
    raw["approvers"] = config.approvers
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    alone = cli("failover", "execute", "--config", str(path), "--to", "offsite", "--site", "offsite", "--yes")
    assert alone.returncode == 3 and "needs a second person" in alone.stderr
    execute = (
        "failover",
        "execute",
        "--config",
        str(path),
        "--to",
        "offsite",
        "--site",
        "offsite",
        "--yes",
        "--approver",
        "sato",
    )
    # sato alone, with her own secret, claiming to be someone else: the operator proves nothing
    for env in ({"LOGNAME": "ito", "USER": "ito"}, {"BCPCTL_OPERATOR_SECRET": SECRETS["sato"]}):
        alone = cli(*execute, "--operator", "ito", env={"BCPCTL_APPROVER_SECRET": SECRETS["sato"], **env})
        assert alone.returncode == 3 and "operator" in alone.stderr, alone.stderr
    operator = {"BCPCTL_OPERATOR_SECRET": SECRETS["tanaka"]}
    execute = (*execute, "--operator", "tanaka")
    for env in ({}, {"BCPCTL_APPROVER_SECRET": "guessed-secret-000"}, {"BCPCTL_APPROVER_SECRET": SECRETS["ito"]}):
        refused = cli(*execute, env={**operator, **env})
        assert refused.returncode == 3, refused.stderr
        assert "no approver secret" in refused.stderr or "does not match approver 'sato'" in refused.stderr
        assert all(secret not in refused.stderr + refused.stdout for secret in (*SECRETS.values(), "guessed"))
    wrong_file = tmp_path / "secret"
    wrong_file.write_text("guessed-secret-000\n")
    refused = cli(*execute, "--approver-secret-file", str(wrong_file), env=operator)
    assert refused.returncode == 3 and "does not match" in refused.stderr
    assert json.loads(cli("drill", "list", "--json").stdout) == [], "a refused failover records nothing"
    chain = cli("audit", "verify", "--json")
    assert json.loads(chain.stdout)["entries"] == 0, "and audits nothing"


def test_failover_and_failback_approvals_are_signed_into_the_audit_chain(own_example: Built) -> None:
    from dc.approvers import verify
    from dc.audit import read_entries

    config = _two_person(own_example.config)
    ctx = RunContext.create(config, own_example.config_dir, open_state(None))
    hooks = RecordingHooks()
    over = execute_failover(
        ctx, FailoverRequest("offsite", confirmed=True, approver="sato", approver_secret=SECRETS["sato"], **OPERATOR),
        hooks=hooks, handle_signals=False,
    )  # fmt: skip
    assert over.status == "passed", over.verdict()
    back = execute_failback(
        ctx, FailbackRequest(True, "ito", SECRETS["ito"], **OPERATOR), hooks=hooks, handle_signals=False
    )
    assert back.status == "passed", back.verdict()
    entries = [e for e in read_entries(ctx.state) if e.action.endswith(".approved")]
    assert [(e.action, e.actor, e.subject) for e in entries] == [
        ("failover.approved", "sato", over.id),
        ("failback.approved", "ito", back.id),
    ]
    first, second = (json.loads(e.details) for e in entries)
    assert verify(config.approvers, first) is None and verify(config.approvers, second) is None
    assert first["approval"]["to_site"] == "offsite" and first["approval"]["planned"] is False
    assert second["approval"]["failover_run"] == over.id
    assert (
        first["approval"]["operator"] == "tanaka"
        and verify(config.approvers, first["approval"]["operator_approval"]) is None
    )
    assert over.approver == "sato" and back.approver == "ito"
    first["approval"]["to_site"] = "primary"  # what was approved cannot be edited afterwards
    assert verify(config.approvers, first) is not None


def _tight_rpo_context(built: Built) -> RunContext:
    """The example with a one-second RPO for every system: any real snapshot is already too old."""
    config = built.config
    tight = {name: system.model_copy(update={"rpo": 1}) for name, system in config.systems.items()}
    return RunContext.create(config.model_copy(update={"systems": tight}), built.config_dir, open_state(None))


def test_a_failover_after_the_rpo_has_passed_still_promotes_and_reports_the_loss(own_example: Built) -> None:
    """The writes are already lost: refusing to promote would only add downtime to the data loss."""
    time.sleep(1.1)
    hooks = RecordingHooks()
    over = execute_failover(
        _tight_rpo_context(own_example), FailoverRequest("offsite", confirmed=True), hooks=hooks, handle_signals=False
    )
    assert over.status == "passed", over.verdict()
    assert hooks.calls == [("fence", "primary"), ("promote", "offsite")]
    assert all(s.ok and s.rpo_met is False for s in over.systems)
    assert len([w for w in over.warnings if "RPO" in w and "exceeds the target" in w]) == len(over.systems)
    assert active_failover(own_example.context().state) is not None


def test_rto_is_measured_from_the_declared_disaster(own_example: Built) -> None:
    struck = utcnow() - timedelta(minutes=3)  # the earthquake, three minutes before the operator could start
    over = execute_failover(
        own_example.context(),
        FailoverRequest("offsite", confirmed=True, declared_at=struck),
        hooks=RecordingHooks(),
        handle_signals=False,
    )
    assert over.status == "passed", over.verdict()
    assert over.declared_at == struck
    assert all(s.rto_seconds is not None and 180 <= s.rto_seconds < 600 for s in over.systems)


def test_a_disaster_declared_in_the_future_is_refused(example: Built) -> None:
    later = utcnow() + timedelta(hours=1)
    with pytest.raises(FailoverRefused, match="in the future"):
        execute_failover(
            example.context(),
            FailoverRequest("offsite", confirmed=True, declared_at=later),
            hooks=RecordingHooks(),
            handle_signals=False,
        )
