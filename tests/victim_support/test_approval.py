"""Who may approve, the two-person rule, alternates and expiry (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from victim_support import approval as rules
from victim_support.errors import PolicyRejected, RequestStateError
from victim_support.settings import ExportSettings

SETTINGS = ExportSettings.model_validate(
    {
        "approvals": {"APPI-69-2-3": 2},
        "alternate_approvers": ["pref-bosai"],
        "tenants": {"goka": {"approvers": ["suzuki", "tanaka"], "alternate_approvers": ["koga-shocho"]}},
    }
)
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def check(
    approver: str, *, approvals: list[rules.Approval] | None = None, status: str = "pending", reason: str = ""
) -> str:
    return rules.check_decision(
        status=status,
        tenant_id="goka",
        approvals=approvals or [],
        approver=approver,
        requested_by="koga-yamada",
        reason=reason,
        settings=SETTINGS,
    )


def test_tenant_approver_and_alternates() -> None:
    assert check("suzuki") == rules.TENANT_ROLE
    assert check("pref-bosai", reason="町役場が被災し機能停止") == rules.ALTERNATE_ROLE
    assert check("koga-shocho", reason="町長不在") == rules.ALTERNATE_ROLE


@pytest.mark.parametrize(
    ("approver", "kwargs", "message"),
    [
        ("mallory", {}, "is not an approver for goka"),
        ("koga-yamada", {}, "is not an approver"),
        ("pref-bosai", {}, "must give --reason"),
        ("suzuki", {"approvals": [rules.Approval("suzuki", "tenant", NOW)]}, "has already approved"),
    ],
)
def test_refused_approvals(approver: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyRejected, match=message):
        check(approver, **kwargs)  # type: ignore[arg-type]


def test_requester_cannot_approve_even_when_listed() -> None:
    settings = SETTINGS.model_copy(
        update={"tenants": {"goka": SETTINGS.tenant("goka").model_copy(update={"approvers": ("koga-yamada",)})}}
    )
    with pytest.raises(PolicyRejected, match="requester cannot approve"):
        rules.check_decision(
            status="pending", tenant_id="goka", approvals=[], approver="koga-yamada",
            requested_by="koga-yamada", reason="", settings=settings,
        )  # fmt: skip


@pytest.mark.parametrize("status", ["approved", "denied", "expired"])
def test_only_pending_requests_take_decisions(status: str) -> None:
    with pytest.raises(RequestStateError, match=f"the request is {status}"):
        check("suzuki", status=status)


def test_two_person_rule_counts_distinct_people() -> None:
    one = [rules.Approval("suzuki", "tenant", NOW)]
    assert SETTINGS.required_approvals("APPI-69-2-3") == 2
    assert SETTINGS.required_approvals("DMA-49-11-3") == 1
    assert not rules.quorum_reached(one, 2)
    assert not rules.quorum_reached(one + one, 2)
    assert rules.quorum_reached([*one, rules.Approval("pref-bosai", "alternate", NOW, "r")], 2)


def test_expiry() -> None:
    until = NOW + timedelta(days=7)
    assert rules.effective_status("pending", until, NOW) == "pending"
    assert rules.effective_status("pending", until, until) == "expired"
    assert rules.effective_status("approved", until, until + timedelta(seconds=1)) == "expired"
    assert rules.effective_status("denied", until, until + timedelta(days=1)) == "denied"


@pytest.mark.parametrize("approver", ["suzuki", "tanaka", "pref-bosai", "koga-shocho"])
def test_no_one_approves_for_a_town_whose_approvers_are_not_all_enrolled(approver: str) -> None:
    assert rules.unenrolled(SETTINGS, "goka", {"suzuki": "credential"}) == ["tanaka"]
    assert rules.unenrolled(SETTINGS, "goka", {"suzuki": "c", "tanaka": "c"}) == []
    with pytest.raises(PolicyRejected, match=r"until its approvers are enrolled \(tanaka\)"):
        rules.check_decision(
            status="pending", tenant_id="goka", approvals=[], approver=approver, requested_by="koga-yamada",
            reason="町役場が被災", settings=SETTINGS, waiting=["tanaka"],
        )  # fmt: skip
