"""The law tables: what each basis allows and rejects, with reasons (pure, no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from victim_support.fields import FIELDS, NEVER_EXPORTED
from victim_support.policy import BASES, PURPOSES, NewRequest, Scope, evaluate

TODAY = date(2026, 11, 28)
#: 古河市 asks for 五霞町's residents
LG_CODES = {"partner_lg_code": "082040", "tenant_lg_code": "085421"}
BASE = NewRequest(
    partner="koga",
    tenant="goka",
    requested_by="koga-yamada",
    disaster_id="2026-kanto-eq",
    disaster_date=date(2026, 11, 20),
    basis="APPI-69-2-3",
    purposes=("EVACUEE_IDENTIFICATION",),
    fields=("name", "birth_date", "sex", "address"),
    scope=Scope(areas=("大字元栗橋",)),
    retention_days=90,
)


def decide(**changes: object):  # type: ignore[no-untyped-def]
    codes = {**LG_CODES, **{k: changes.pop(k) for k in list(changes) if k in LG_CODES}}
    return evaluate(replace(BASE, **changes), **codes, today=TODAY, max_retention_days=90)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("basis", "purposes", "fields", "scope"),
    [
        ("APPI-69-2-3", ("EVACUEE_IDENTIFICATION",), ("name", "birth_date", "sex", "address"), Scope(("a",))),
        ("APPI-69-2-3", ("SHELTER_ADMIN",), ("name", "relationship", "address"), Scope(all_areas=True)),
        ("APPI-69-2-3", ("EVACUEE_IDENTIFICATION",), ("name_kana", "resident_since"), Scope(("a",))),
        ("DMA-90-4-1-3", ("AID_DISTRIBUTION",), ("name", "address", "damage_status", "aid_status"), Scope(("a",))),
        ("DMA-90-4-1-3", ("CERTIFICATE_APPLICATION_RELAY", "AID_DISTRIBUTION"), ("name", "damage"), Scope(("a",))),
        ("DMA-49-11-3", ("WELFARE_CHECK",), ("name", "phone", "support_reason_code"), Scope(("a",), support_only=True)),
        (
            "DMA-49-11-3",
            ("SAFETY_CONFIRMATION",),
            ("name", "birth_date", "phone"),
            Scope(all_areas=True, support_only=True),
        ),
    ],
)
def test_allowed_combinations(basis: str, purposes: tuple[str, ...], fields: tuple[str, ...], scope: Scope) -> None:
    decision = decide(basis=basis, purposes=purposes, fields=fields, scope=scope)
    assert decision.allowed, decision.reasons
    assert decision.fields[:2] == ("person_ref", "household_ref")
    assert set(decision.fields) <= set(FIELDS)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"basis": "CONSENT"}, "unknown legal basis 'CONSENT'"),
        ({"purposes": ()}, "at least one purpose is required"),
        ({"purposes": ("MARKETING",)}, "unknown purpose 'MARKETING'"),
        ({"purposes": ("WELFARE_CHECK",)}, "purpose WELFARE_CHECK is not allowed under APPI-69-2-3"),
        ({"basis": "DMA-49-11-3", "purposes": ("AID_DISTRIBUTION",)}, "purpose AID_DISTRIBUTION is not allowed"),
        ({"fields": ("name", "kojin_bango")}, "個人番号 is never exported"),
        ({"fields": ("個人番号",)}, "個人番号 is never exported"),
        ({"fields": ("マイナンバー",)}, "個人番号 is never exported"),
        ({"fields": ("住民票コード",)}, "住民票コード is never exported"),
        ({"fields": ("honseki",)}, "本籍 is never exported"),
        ({"fields": ("insurance",)}, "insurance data"),
        ({"fields": ("kiso_nenkin_no",)}, "pension data"),
        ({"fields": ("atena_no",)}, "宛名番号 is never exported"),
        ({"fields": ("shien_sochi",)}, "支援措置 rows are never exported"),
        ({"fields": ("shoe_size",)}, "unknown field 'shoe_size'"),
        ({"fields": ()}, "no fields requested"),
        ({"fields": ("phone",)}, "field phone is not allowed under APPI-69-2-3"),
        ({"fields": ("support_reason_code",)}, "field support_reason_code is not allowed under APPI-69-2-3"),
        ({"fields": ("damage_status",)}, "field damage_status is not allowed under APPI-69-2-3"),
        (
            {"basis": "DMA-90-4-1-3", "purposes": ("EVACUEE_IDENTIFICATION",), "fields": ("damage_status",)},
            "field damage_status is not needed for the stated purposes",
        ),
        (
            {"fields": ("relationship",), "purposes": ("EVACUEE_IDENTIFICATION",), "basis": "DMA-90-4-1-3"},
            "relationship",
        ),
        ({"basis": "DMA-49-11-3", "purposes": ("WELFARE_CHECK",)}, "covers only 避難行動要支援者 rows"),
        ({"scope": Scope(("a",), support_only=True)}, "要支援者-only lists need DMA-49-11-3"),
        ({"scope": Scope()}, "the scope names no 町字"),
        ({"scope": Scope(("a",), all_areas=True)}, "either 町字 names or all areas"),
        ({"retention_days": 0}, "retention of 0 days"),
        ({"retention_days": None}, "a retention period is required"),
        ({"retention_days": 365}, "retention of 365 days"),
        ({"partner_lg_code": "085421"}, "cannot request its own residents"),
        ({"disaster_date": date(2026, 12, 1)}, "is in the future"),
        ({"disaster_id": " "}, "a disaster id is required"),
        ({"formats": ("xlsx",)}, "unknown format 'xlsx'"),
        ({"formats": ("pfif",), "fields": ("birth_date",)}, "PFIF needs the name field"),
    ],
)
def test_rejected_combinations_name_the_rule(changes: dict[str, object], reason: str) -> None:
    decision = decide(**changes)
    assert not decision.allowed
    assert decision.fields == ()
    assert any(reason in r for r in decision.reasons), decision.reasons
    assert decision.message().startswith("request rejected: ")


def test_every_reason_is_reported_not_only_the_first() -> None:
    decision = decide(fields=("kojin_bango", "juminhyo_code", "phone"), retention_days=400)
    assert len(decision.reasons) == 4
    assert "(and 3 more)" in decision.message()


def test_never_exported_fields_are_rejected_under_every_basis_and_purpose() -> None:
    for basis, rule in BASES.items():
        for purpose in rule.purposes:
            support = "SUPPORT_NEEDED" in str(rule.row_classes).upper()
            for forbidden in NEVER_EXPORTED:
                decision = decide(
                    basis=basis,
                    purposes=(purpose,),
                    fields=("name", forbidden),
                    scope=Scope(("a",), support_only=support),
                )
                assert not decision.allowed, (basis, purpose, forbidden)


def test_name_brings_its_fallback_and_columns_follow_file_order() -> None:
    decision = decide(fields=("postal_code", "name", "sex"))
    assert decision.fields == ("person_ref", "household_ref", "name", "name_fallback", "sex", "postal_code")


def test_tables_are_consistent() -> None:
    for code, rule in BASES.items():
        assert rule.purposes <= set(PURPOSES), code
        assert rule.fields <= set(FIELDS), code
        assert not rule.fields & set(NEVER_EXPORTED), code
    for _title, fields in PURPOSES.values():
        assert fields <= set(FIELDS)
