"""Every code the pages can show has its Japanese label (a new status or role without one fails here)."""

from __future__ import annotations

import pytest

from bcpctl.web import labels
from dc.accounts import ROLES
from victim_support import approval as request
from victim_support.fields import FIELDS
from victim_support.policy import BASES, PURPOSES


def _has_japanese(text: str) -> bool:
    return any("\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" for c in text)


RUN_STATUSES = ("running", "passed", "failed", "aborted", "killed")
REQUEST_STATUSES = (request.PENDING, request.APPROVED, request.DENIED, request.EXPIRED, "deleted")


@pytest.mark.parametrize("code", [*RUN_STATUSES, *REQUEST_STATUSES])
def test_every_status_has_a_symbol_and_japanese(code: str) -> None:
    shown = str(labels.status_label(code))
    symbol, words = labels.STATUSES[code]
    assert symbol and _has_japanese(words) and code in words and f"badge {code}" in shown


def test_every_purpose_field_basis_and_role_is_named_beside_its_code() -> None:
    for code in PURPOSES:
        assert code in labels.purpose_label(code) and _has_japanese(labels.purpose_label(code))
    for code in FIELDS:
        assert code in labels.field_label(code) and _has_japanese(labels.field_label(code))
    for code in BASES:
        shown = labels.basis_label(code)
        assert code in shown and BASES[code].law in shown
    for role in ROLES:
        assert _has_japanese(labels.role_label(role)) and role in labels.role_label(role)


def test_a_code_is_escaped_and_an_unknown_one_still_shows_itself() -> None:
    assert "&lt;script&gt;" in labels.field_label("<script>")
    assert "<script>" not in labels.status_label("<script>")
