"""Approver credentials (dc.approvers): a signature binds the approver to exactly what they approved."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.approvers import (
    MIN_COST,
    ApproverAuthFailed,
    enroll,
    holds,
    parse_credential,
    prove,
    verify,
)

WHAT = {
    "action": "export.approve",
    "request": "exp-1",
    "spec": "a" * 64,
    "reason": "",
    "at": "2026-11-20T00:00:00+00:00",
}


@functools.cache
def approvers() -> dict[str, str]:
    return {"sato": enroll("sato-secret-0001", MIN_COST).text(), "ito": enroll("ito-secret-00001", MIN_COST).text()}


def test_a_credential_round_trips_and_holds_only_its_secret() -> None:
    credential = parse_credential(approvers()["sato"])
    assert credential.text() == approvers()["sato"] and credential.id.startswith("apk-")
    assert holds(credential, "sato-secret-0001")
    assert not holds(credential, "sato-secret-0002") and not holds(credential, "ito-secret-00001")
    again = enroll("sato-secret-0001", MIN_COST)
    assert again.public_key != credential.public_key  # a fresh salt per enrolment: same secret, other key


@pytest.mark.parametrize(
    ("approver", "secret", "message"),
    [
        ("sato", None, "no approver secret"),
        ("sato", "", "no approver secret"),
        ("sato", "ito-secret-00001", "does not match approver 'sato'"),
        ("sato", "x" * 5000, "does not match"),
        ("kato", "sato-secret-0001", "'kato' has no enrolled credential"),
    ],
)
def test_proof_refused(approver: str, secret: str | None, message: str) -> None:
    with pytest.raises(ApproverAuthFailed, match=message):
        prove(approvers(), approver, secret, WHAT)


def _tampered(details: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**details, "approval": {**details["approval"], key: value}}


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    key=st.sampled_from([*WHAT, "approver", "credential", "os_user", "extra"]),
    value=st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
)
def test_any_change_to_a_signed_statement_is_detected(key: str, value: Any) -> None:
    details = prove(approvers(), "sato", "sato-secret-0001", WHAT).details()
    assert verify(approvers(), details) is None
    changed = _tampered(details, key, value)
    if changed == details:
        return
    assert verify(approvers(), changed) is not None


def test_a_signature_does_not_transfer_to_another_approver_or_credential() -> None:
    details = prove(approvers(), "sato", "sato-secret-0001", WHAT).details()
    assert "not ito's configured credential" in str(verify(approvers(), _tampered(details, "approver", "ito")))
    rotated = {**approvers(), "sato": enroll("sato-secret-0001", MIN_COST).text()}
    assert "not sato's configured credential" in str(verify(rotated, details))
    assert "has no credential" in str(verify({}, details))
    assert verify(approvers(), {"approval": details["approval"]}) == "carries no signed approval"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:" + "0" * 64,
        "approver-v1$argon2id$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43,  # too cheap
        "approver-v1$argon2id$m=19456,t=2,p=4$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43,  # lanes
        "approver-v1$argon2id$m=19456,t=2,p=1$AAAA$" + "A" * 43,  # short salt
    ],
)
def test_malformed_credentials_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_credential(text)
