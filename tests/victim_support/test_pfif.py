"""PFIF 1.4 output validates structurally against the specification's person record."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from victim_support.pfif import MANDATORY, NAMESPACE, PERSON_FIELDS, pfif_document

NS = {"pfif": NAMESPACE}
COLUMNS = (
    "person_ref", "household_ref", "name", "name_fallback", "name_kana", "birth_date", "sex",
    "pref", "city", "machiaza_name", "banchi", "katagaki", "postal_code",
)  # fmt: skip
ROWS = [
    ("aa11", "h1", "鈴木　一郎", "", "スズキ　イチロウ", "1950-01-02", "1", "茨城県", "猿島郡五霞町",
     "大字川妻", "12", "", "3060300"),
    ("bb22", "h1", "\U00020bb7田　花子", "吉田　花子", "ヨシダ　ハナコ", "1980-03-04", "2", "茨城県", "猿島郡五霞町",
     "大字川妻", "12", "コーポ<A&B>", "3060300"),
    ("cc33", "h2", "名無し", "", "", "2001-05-06", "9", "茨城県", "猿島郡五霞町", "大字江川", "3-4", "", "3060301"),
]  # fmt: skip
WHEN = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
EXPIRES = datetime(2027, 2, 26, 9, 30, tzinfo=UTC)


def document() -> ET.Element:
    data = pfif_document(
        COLUMNS, ROWS, lg_code="085421", author_name="五霞町", entry_date=WHEN, expiry_date=EXPIRES, source_date=WHEN
    )
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(data)


def test_structure_follows_pfif_1_4() -> None:
    root = document()
    assert root.tag == f"{{{NAMESPACE}}}pfif"
    persons = root.findall("pfif:person", NS)
    assert len(persons) == len(ROWS)
    for person in persons:
        tags = [child.tag.removeprefix(f"{{{NAMESPACE}}}") for child in person]
        assert all(child.tag.startswith(f"{{{NAMESPACE}}}") for child in person)
        assert set(tags) <= set(PERSON_FIELDS)
        assert tags == sorted(tags, key=PERSON_FIELDS.index), "elements out of PFIF 1.4 order"
        assert len(tags) == len(set(tags))
        for field in MANDATORY:
            assert (person.findtext(f"pfif:{field}", namespaces=NS) or "").strip(), field
        assert person.findtext("pfif:expiry_date", namespaces=NS) == "2027-02-26T09:30:00Z"
        domain, _, unique = person.findtext("pfif:person_record_id", namespaces=NS).partition("/")  # type: ignore[union-attr]
        assert domain == "085421" and unique


def test_values_are_mapped_and_escaped() -> None:
    first, second, third = document().findall("pfif:person", NS)
    assert first.findtext("pfif:person_record_id", namespaces=NS) == "085421/aa11"
    assert first.findtext("pfif:family_name", namespaces=NS) == "鈴木"
    assert first.findtext("pfif:given_name", namespaces=NS) == "一郎"
    assert first.findtext("pfif:sex", namespaces=NS) == "male"
    assert first.findtext("pfif:date_of_birth", namespaces=NS) == "1950-01-02"
    assert first.findtext("pfif:home_country", namespaces=NS) == "JP"
    assert second.findtext("pfif:full_name", namespaces=NS) == "\U00020bb7田　花子"
    assert second.findtext("pfif:alternate_names", namespaces=NS) == "吉田　花子\nヨシダ　ハナコ"
    assert second.findtext("pfif:home_street", namespaces=NS) == "12 コーポ<A&B>"
    assert third.find("pfif:sex", NS) is None  # 9 (不明) is not guessed
    assert third.find("pfif:given_name", NS) is None


def test_only_requested_fields_appear() -> None:
    data = pfif_document(
        ("person_ref", "household_ref", "name", "name_fallback"),
        [("aa", "h", "鈴木　一郎", "")],
        lg_code="085421", author_name="五霞町", entry_date=WHEN, expiry_date=EXPIRES, source_date=WHEN,
    )  # fmt: skip
    person = ET.fromstring(data).find("pfif:person", NS)
    assert person is not None
    assert person.find("pfif:date_of_birth", NS) is None
    assert person.find("pfif:home_street", NS) is None
