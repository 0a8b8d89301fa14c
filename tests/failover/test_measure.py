"""Pure pieces of a run: recovery point choice, RTO/RPO judgement, plan execution, approvals."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from backup.snapshot import Snapshot
from failover.abort import AbortSignal
from failover.approval import confirm
from failover.errors import ApprovalRefused, ConfirmationRequired
from failover.execution import run_plan
from failover.measure import apply_measurement, choose_snapshot, exposure
from failover.plan import PlanStep, RecoveryPlan
from failover.recover import new_result
from failover.results import SystemResult
from failover.settings import FailoverSettings

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def snap(minutes: int, sid: str) -> Snapshot:
    return Snapshot(T0 + timedelta(minutes=minutes), "h", "u", "postgres", "x", (), system="juki", id=sid)


def test_choose_the_newest_or_the_last_good_before_an_event() -> None:
    snaps = [snap(0, "a"), snap(30, "b"), snap(60, "c")]
    assert choose_snapshot(snaps).id == "c"  # type: ignore[union-attr]
    assert choose_snapshot(snaps, T0 + timedelta(minutes=45)).id == "b"  # type: ignore[union-attr]
    assert choose_snapshot(snaps, T0 + timedelta(minutes=30)).id == "a", "strictly before the event"  # type: ignore[union-attr]
    assert choose_snapshot(snaps, T0) is None
    assert exposure(None, T0, 900)["within_rpo"] is False
    assert exposure(snaps[0], T0 + timedelta(minutes=20), 900) == {
        "snapshot": "a",
        "time": T0.isoformat(),
        "age_seconds": 1200.0,
        "within_rpo": False,
    }


def _result(status: str = "passed", finished: float = 100.0, rpo: int = 900, rto: int = 3600) -> SystemResult:
    r = SystemResult("juki", "goka", "住基", 1, 1, rpo, rto, status=status, snapshot_time=T0, finished_at=finished)
    return r


def test_targets_met_and_missed() -> None:
    ok = _result()
    apply_measurement(ok, declared=T0 + timedelta(minutes=10), rpo_reference=T0 + timedelta(minutes=10))
    assert (ok.status, ok.rpo_seconds, ok.rpo_met, ok.rto_seconds, ok.rto_met) == ("passed", 600.0, True, 100.0, True)
    late = _result(rpo=300)
    apply_measurement(late, declared=T0 + timedelta(minutes=10), rpo_reference=T0 + timedelta(minutes=10))
    assert (
        late.status == "failed" and late.error == "RPO 10m exceeds the target 5m" and "replication" in (late.fix or "")
    )
    slow = _result(finished=7200.0)
    apply_measurement(slow, declared=T0, rpo_reference=T0)
    assert slow.status == "failed" and slow.error == "RTO 2h exceeds the target 1h" and slow.rto_met is False
    broken = _result(status="failed")
    apply_measurement(broken, declared=T0, rpo_reference=T0)
    assert broken.rto_seconds is None, "a system that did not come back has no RTO"


def _plan(groups: list[list[tuple[str, tuple[str, ...]]]]) -> RecoveryPlan:
    return RecoveryPlan(
        tuple(
            tuple(PlanStep(n, "goka", "b", i + 1, 900, 3600, deps, "path") for n, deps in group)
            for i, group in enumerate(groups)
        )
    )


def test_run_plan_bounds_workers_respects_dependencies_and_skips_dependents_of_failures() -> None:
    plan = _plan([[("a", ()), ("b", ()), ("c", ()), ("d", ("a",))], [("e", ("b",)), ("f", ("c",))]])
    running, peak, order = 0, 0, []
    lock = threading.Lock()

    def work(step: PlanStep, group: int) -> SystemResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            order.append(step.system)
        time.sleep(0.05)
        with lock:
            running -= 1
        result = new_result(step, group)
        result.status = "failed" if step.system == "c" else "passed"
        return result

    results = run_plan(plan, work, workers=2, abort=AbortSignal())
    assert peak == 2
    assert order.index("d") > order.index("a") and set(order) == {"a", "b", "c", "d", "e"}
    assert [(r.system, r.status, r.group) for r in results] == [
        ("a", "passed", 1),
        ("b", "passed", 1),
        ("c", "failed", 1),
        ("d", "passed", 1),
        ("e", "passed", 2),
        ("f", "skipped", 2),
    ]
    assert results[-1].error == "not started: dependency c did not come back"


def test_run_plan_starts_nothing_after_an_abort() -> None:
    plan = _plan([[("a", ()), ("b", ())], [("c", ())]])
    abort = AbortSignal()

    def work(step: PlanStep, group: int) -> SystemResult:
        abort.trigger("received SIGINT")
        result = new_result(step, group)
        result.status = "aborted"
        return result

    results = run_plan(plan, work, workers=1, abort=abort)
    assert [r.status for r in results] == ["aborted", "aborted", "aborted"]
    assert results[2].error == "not started: received SIGINT"
    abort.trigger("timeout after 5s")
    assert abort.reason == "received SIGINT" and abort.ignored == ["timeout after 5s"]


def test_confirmation_and_two_person_approval() -> None:
    from dc.approvers import MIN_COST, enroll, verify

    credentials = {"sato": enroll("s3cret-of-sato", MIN_COST).text(), "ito": enroll("mine-of-ito-0", MIN_COST).text()}
    credentials["ito-again"] = enroll("s3cret-of-sato", MIN_COST).text()  # sato enrolled a second name
    what = {"to_site": "offsite", "planned": False}
    one = FailoverSettings()
    with pytest.raises(ConfirmationRequired):
        confirm(one, credentials, action="failover", yes=False, operator="ito", approver=None, secret=None, what=what)
    assert confirm(one, credentials, action="failover", yes=True, operator="ito", approver=None, secret=None,
                   what=what) is None  # fmt: skip
    two = FailoverSettings(two_person=True, approvers=("sato", "ito"))
    own = "mine-of-ito-0"
    cases = [
        ({"approver": None, "secret": None, "operator_secret": own}, "needs a second person"),
        ({"approver": "kato", "secret": "s3cret-of-sato", "operator_secret": own}, "not a configured approver"),
        ({"approver": "ito", "secret": own, "operator_secret": own}, "someone other than the operator"),
        ({"approver": "sato", "secret": None, "operator_secret": own}, "no approver secret"),
        ({"approver": "sato", "secret": own, "operator_secret": own}, "does not match"),
        # the operator proves who they are too: a name alone (or $LOGNAME) is not a second person
        ({"approver": "sato", "secret": "s3cret-of-sato", "operator_secret": None}, "operator to prove"),
        ({"approver": "sato", "secret": "s3cret-of-sato", "operator_secret": "s3cret-of-sato"}, "operator's secret"),
        ({"approver": "sato", "secret": "s3cret-of-sato", "operator": "kato", "operator_secret": own}, "no enrolled"),
        # one person under two enrolled names is still one person
        (
            {
                "approver": "sato",
                "secret": "s3cret-of-sato",
                "operator": "ito-again",
                "operator_secret": "s3cret-of-sato",
            },
            "one person cannot be both",
        ),
    ]
    for kwargs, message in cases:
        kwargs = {"operator": "ito", **kwargs}
        with pytest.raises(ApprovalRefused, match=message) as err:
            confirm(two, credentials, action="failover", yes=True, what=what, **kwargs)  # type: ignore[arg-type]
        assert err.value.exit_code == 3 and "s3cret" not in str(err.value) and own not in str(err.value)
    proof = confirm(two, credentials, action="failover", yes=True, operator="ito", approver="sato",
                    secret="s3cret-of-sato", what=what, operator_secret=own)  # fmt: skip
    assert proof is not None and proof.approver == "sato" and verify(credentials, proof.details()) is None
    assert proof.statement["to_site"] == "offsite" and proof.statement["operator"] == "ito"
    operator_proof = proof.statement["operator_approval"]
    assert verify(credentials, operator_proof) is None and operator_proof["approval"]["approver"] == "ito"
    # without the two-person rule a named approver must still prove it
    with pytest.raises(ApprovalRefused, match="does not match"):
        confirm(FailoverSettings(approvers=("sato",)), credentials, action="failover", yes=True, operator="ito",
                approver="sato", secret="wrong-secret-000", what=what)  # fmt: skip
