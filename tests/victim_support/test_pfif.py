"""PFIF 1.4 output validates structurally against the specification's person record."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from victim_support.errors import NoteRejected
from victim_support.pfif import MANDATORY, NAMESPACE, PERSON_FIELDS, pfif_document
from victim_support.pfifnote import Note, notes_document, parse_notes

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
        COLUMNS,
        ROWS,
        domain="town.goka.lg.jp",
        author_name="五霞町",
        entry_date=WHEN,
        expiry_date=EXPIRES,
        source_date=WHEN,
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
        assert domain == "town.goka.lg.jp" and unique


def test_values_are_mapped_and_escaped() -> None:
    first, second, third = document().findall("pfif:person", NS)
    assert first.findtext("pfif:person_record_id", namespaces=NS) == "town.goka.lg.jp/aa11"
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
        domain="town.goka.lg.jp", author_name="五霞町", entry_date=WHEN, expiry_date=EXPIRES, source_date=WHEN,
    )  # fmt: skip
    person = ET.fromstring(data).find("pfif:person", NS)
    assert person is not None
    assert person.find("pfif:date_of_birth", NS) is None
    assert person.find("pfif:home_street", NS) is None


def test_an_independent_pfif_1_4_reader_accepts_the_persons() -> None:
    from tests.victim_support import pfif_spec

    data = pfif_document(
        COLUMNS, ROWS, domain="town.goka.lg.jp", author_name="五霞町", entry_date=WHEN, expiry_date=EXPIRES,
        source_date=WHEN,
    )  # fmt: skip
    persons = pfif_spec.read(data)["persons"]
    assert [p["person_record_id"] for p in persons] == [
        "town.goka.lg.jp/aa11",
        "town.goka.lg.jp/bb22",
        "town.goka.lg.jp/cc33",
    ]
    assert all(p["source_date"] == "2026-11-28T09:30:00Z" for p in persons)


TSUKUBA, GOKA = "city.tsukuba.lg.jp", "town.goka.lg.jp"
NOTES = [
    Note(f"{TSUKUBA}/note.1", f"{GOKA}/aa11", "つくば市 避難所 佐藤", WHEN, "本人と面会。体調良好。",
         entry_date=WHEN, author_made_contact=True, status="is_note_author", last_known_location="竹園東小学校"),
    Note(f"{TSUKUBA}/note.2", f"{GOKA}/aa11", "つくば市 山田", EXPIRES, "家族 <A&B> が探している",
         status="information_sought"),
    Note(f"{TSUKUBA}/note.3", f"{GOKA}/bb22", "つくば市 鈴木", WHEN, "避難所で確認", author_made_contact=False,
         status="believed_alive", last_known_location="つくば市 二の宮体育館"),
]  # fmt: skip


def test_notes_round_trip_through_an_independent_reader_and_our_own() -> None:
    from tests.victim_support import pfif_spec

    data = notes_document(NOTES)
    read = pfif_spec.read(data)["notes"]
    assert [n["note_record_id"] for n in read] == [n.note_record_id for n in NOTES]
    assert read[0]["author_made_contact"] == "true" and read[0]["status"] == "is_note_author"
    assert read[1]["text"] == "家族 <A&B> が探している" and read[1]["source_date"] == "2027-02-26T09:30:00Z"
    assert parse_notes(data) == NOTES


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<x/>", "root element"),
        (b'<!DOCTYPE p [<!ENTITY a "aaaa">]><pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4"/>', "DTD"),
        (b"<pfif:pfif xmlns:pfif='http://zesty.ca/pfif/1.3'/>", "root element"),
        (b"not xml", "well-formed"),
        (b"<pfif:pfif xmlns:pfif='http://zesty.ca/pfif/1.4'><pfif:person/></pfif:pfif>", "only PFIF 1.4 notes"),
        (b"x" * ((1 << 20) + 1), "bound"),
    ],
)
def test_a_malformed_notes_document_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(NoteRejected, match=why):
        parse_notes(body)


def test_every_note_rule_is_enforced() -> None:
    good = notes_document(NOTES[:1]).decode()
    edits = {
        "<pfif:status>is_note_author</pfif:status>": ("<pfif:status>found</pfif:status>", "status"),
        "<pfif:source_date>2026-11-28T09:30:00Z</pfif:source_date>": (
            "<pfif:source_date>2026-11-28T18:30:00+09:00</pfif:source_date>", "UTC"),
        "<pfif:person_record_id>town.goka.lg.jp/aa11</pfif:person_record_id>": (
            "<pfif:person_record_id>085464/aa11</pfif:person_record_id>", "domain/unique"),
        "<pfif:author_made_contact>true</pfif:author_made_contact>": (
            "<pfif:author_made_contact>yes</pfif:author_made_contact>", "true or false"),
        "<pfif:text>本人と面会。体調良好。</pfif:text>": ("", "text is required"),
        "<pfif:author_name>": ("<pfif:shelter>x</pfif:shelter><pfif:author_name>", "not a PFIF 1.4 note field"),
    }  # fmt: skip
    for old, (new, why) in edits.items():
        assert old in good, old
        with pytest.raises(NoteRejected, match=why):
            parse_notes(good.replace(old, new).encode())
    entry = "<pfif:entry_date>2026-11-28T09:30:00Z</pfif:entry_date>"
    reordered = good.replace(entry, "").replace("<pfif:note_record_id>", entry + "<pfif:note_record_id>", 1)
    with pytest.raises(NoteRejected, match=r"out of PFIF 1\.4 order"):
        parse_notes(reordered.encode())
