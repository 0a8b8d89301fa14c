"""Drills under faults: a tampered offsite copy, aborts mid-restore, a cut-off cleanup, a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import failover.cleanup
from failover.drill import run_drill
from failover.drillrequest import DrillRequest
from failover.records import list_runs, load_document
from failover.settings import SteadyState
from tests.conftest import Cli
from tests.failover.conftest import Built

pytestmark = pytest.mark.postgres


def test_tampered_offsite_copy_fails_the_drill_with_the_reason(own_example: Built) -> None:
    packs = sorted(
        (own_example.offsite_repo() / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0
    )
    pack = packs[-1]
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    pack.write_bytes(bytes(raw))

    result = run_drill(own_example.context(), DrillRequest(mode="isolated"), handle_signals=False)

    assert result.status == "failed"
    broken = [s for s in result.systems if s.status == "failed"]
    assert broken, "a damaged pack must fail the systems whose data it holds"
    for s in broken:
        assert pack.name[:16] in (s.error or "") or "failed authentication" in (s.error or ""), s.error
        assert "check --read-data" in (s.fix or "")
    assert result.cleanup is not None and result.cleanup.ok, "a failed drill still cleans up"
    assert own_example.drill_dir_entries() == []
    html = Path(result.reports["html"]).read_text(encoding="utf-8")
    assert "FAILED" in html and "check --read-data" in html
    ja = next(Path(p).read_text(encoding="utf-8") for k, p in result.reports.items() if k.startswith("ja:"))
    assert "不合格" in ja or "是正措置" in ja


def _sandboxes_of(built: Built, run_id: str) -> list[str]:
    token = run_id.rsplit("-", 1)[-1]
    return [d for d in built.sandbox_databases() + built.sandbox_roles() if token in d]


def test_sigterm_mid_restore_aborts_and_cleans_up(example: Built) -> None:
    sent: list[int] = []

    def on_bytes(_n: int) -> None:
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the main thread's handler runs meanwhile

    previous = signal.getsignal(signal.SIGTERM)
    result = run_drill(example.context(), DrillRequest(mode="isolated"), on_bytes=on_bytes)
    assert signal.getsignal(signal.SIGTERM) is previous, "the drill restores the signal handlers it replaced"
    assert result.status == "aborted" and result.aborted == "received SIGTERM"
    assert any(s.status == "aborted" for s in result.systems)
    assert result.cleanup is not None and result.cleanup.ok and result.cleanup.removed
    assert _sandboxes_of(example, result.id) == [] and example.drill_dir_entries() == []
    assert list_runs(example.context().state)[0].status == "aborted"


def test_timeout_aborts_and_cleans_up(example: Built) -> None:
    def slow(_n: int) -> None:
        time.sleep(0.4)

    result = run_drill(
        example.context(),
        DrillRequest(mode="isolated", tenant="naka", timeout=0.3),
        on_bytes=slow,
        handle_signals=False,
    )
    assert result.status == "aborted" and result.aborted == "timeout after 0.3s"
    assert result.cleanup is not None and result.cleanup.ok
    assert _sandboxes_of(example, result.id) == []


def test_failing_steady_state_probe_aborts_mid_drill(example: Built, tmp_path: Path) -> None:
    flag = tmp_path / "primary-down"
    ctx = example.context()
    ctx.settings = ctx.settings.model_copy(
        update={"steady_state": SteadyState(command=f"test ! -e {flag}", interval=1, timeout=5)}
    )

    def primary_fails(_n: int) -> None:
        flag.touch()
        time.sleep(0.3)

    result = run_drill(ctx, DrillRequest(mode="isolated"), on_bytes=primary_fails, handle_signals=False)
    assert result.status == "aborted" and (result.aborted or "").startswith("steady-state probe failed")
    assert result.checks[0].name == "steady state before the drill" and result.checks[0].ok
    assert result.cleanup is not None and result.cleanup.ok
    assert _sandboxes_of(example, result.id) == []

    # Unhealthy before it starts: nothing is created at all.
    before = list_runs(ctx.state)
    refused = run_drill(ctx, DrillRequest(mode="isolated"), handle_signals=False)
    assert refused.status == "aborted" and "before the drill" in (refused.aborted or "")
    assert all(s.status == "pending" for s in refused.systems) or not refused.systems
    assert refused.cleanup is not None and refused.cleanup.removed == []
    assert len(list_runs(ctx.state)) == len(before) + 1


def test_a_cut_off_cleanup_is_a_failure_and_the_next_run_sweeps_it(
    example: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_remove = failover.cleanup.remove

    def remove_nothing_for_databases(res):  # type: ignore[no-untyped-def]
        if res.kind != "pg_database":
            real_remove(res)

    monkeypatch.setattr(failover.cleanup, "remove", remove_nothing_for_databases)
    ctx = example.context()
    result = run_drill(ctx, DrillRequest(mode="isolated", tenant="naka"), handle_signals=False)
    assert all(s.status == "passed" for s in result.systems)
    assert result.status == "failed", "restores passed but the cleanup did not: never green"
    # Both databases stay, and so does the tenant's role: the databases still grant it CONNECT.
    assert result.cleanup is not None and len(result.cleanup.leftovers) == 3
    assert sum("still exists after removal" in left for left in result.cleanup.leftovers) == 2
    assert any("cannot be dropped" in left for left in result.cleanup.leftovers)
    assert len(_sandboxes_of(example, result.id)) == 3
    record, _doc = load_document(ctx.state, result.id)  # type: ignore[misc]
    assert record.status == "failed" and "cleanup incomplete" in (record.error or "")

    monkeypatch.setattr(failover.cleanup, "remove", real_remove)
    readiness = run_drill(ctx, DrillRequest(mode="readiness", tenant="naka"), handle_signals=False)
    leftover_check = next(c for c in readiness.checks if c.name == "no sandboxes left by earlier drills")
    assert not leftover_check.ok and result.id in leftover_check.detail
    nxt = run_drill(ctx, DrillRequest(mode="isolated", tenant="naka"), handle_signals=False)
    assert nxt.status == "passed", nxt.verdict()
    assert [w.run_id for w in nxt.swept] == [result.id] and len(nxt.swept[0].cleanup.removed) == 3
    assert _sandboxes_of(example, result.id) == []


def test_sigkilled_drill_is_detected_and_cleaned_by_the_next_run(example: Built, cli: Cli) -> None:
    args = ("drill", "run", "--config", str(example.config_path), "--system", "naka-juki", "--json")
    killed = cli(*args, env={"BCPCTL_FAILPOINTS": "drill.restore.mid-stream"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = example.context().state
    dead = list_runs(state)[0]
    assert dead.status == "running"
    left = _sandboxes_of(example, dead.id)
    assert any(name.endswith("naka_juki") for name in left), "the sandbox existed when the drill died"

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["status"] == "passed"
    assert [(s["run_id"], s["was_status"]) for s in doc["swept"]] == [(dead.id, "killed")]
    removed = " ".join(doc["swept"][0]["cleanup"]["removed"])
    assert all(name in removed for name in left), (left, removed)
    assert _sandboxes_of(example, dead.id) == []
    record, _doc = load_document(state, dead.id)  # type: ignore[misc]
    assert record.status == "killed" and "died" in (record.error or "")
