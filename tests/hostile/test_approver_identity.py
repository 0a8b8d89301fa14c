"""Hostile finding: the "other person" of a two-person rule, and the OS user recorded with an
approval, are whatever the environment says.

A failover with ``drills.failover.two_person`` needs an approver "other than the operator";
the operator is ``getpass.getuser()`` — ``$LOGNAME`` first — and proves nothing. So approver
``sato``, alone at the console with her own secret, runs ``LOGNAME=ito bcpctl failover execute
--yes --approver sato`` and the rule is met. Likewise an export request's ``--requested-by`` is
free text, and with the default of one approval an approver can file a request under another
name and approve it alone. The approval statement's ``os_user`` (promised by issue 15: "the
audit entry records approver, credential id and OS user") is also ``$LOGNAME``: any value.
"""

from __future__ import annotations

import os
import pwd

import pytest

from dc.approvers import MIN_COST, enroll, os_user
from failover.approval import confirm
from failover.errors import ApprovalRefused
from failover.lifecycle import operator_name
from failover.settings import FailoverSettings

SECRETS = {"sato": "sato-approver-secret-1", "ito": "ito-approver-secret-01"}


def test_the_recorded_os_user_is_not_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert os_user() == pwd.getpwuid(os.getuid()).pw_name


def test_one_approver_alone_cannot_meet_the_failover_two_person_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    approvers = {name: enroll(secret, MIN_COST).text() for name, secret in SECRETS.items()}
    settings = FailoverSettings(two_person=True, approvers=("sato", "ito"), hooks="manual")
    monkeypatch.setenv("LOGNAME", "ito")  # sato, alone, says she is ito
    with pytest.raises(ApprovalRefused):
        confirm(
            settings,
            approvers,
            action="failover",
            yes=True,
            operator=operator_name(),
            approver="sato",
            secret=SECRETS["sato"],
            what={"to_site": "offsite"},
        )
