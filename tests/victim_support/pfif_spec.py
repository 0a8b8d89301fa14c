"""A minimal PFIF 1.4 reader written from the specification (https://zesty.ca/pfif/1.4/), not from our code.

It knows only what the specification says — the namespace, the person and note field lists
in their order, the mandatory fields, record ids as ``domain_name/unique_string``, UTC
``YYYY-MM-DDThh:mm:ssZ`` times, the enumerations — and fails on anything else, so output
that passes here is output another PFIF 1.4 system should accept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

NS = "http://zesty.ca/pfif/1.4"
# PFIF 1.4 §3.2, person record fields, in order
PERSON = [
    "person_record_id",
    "entry_date",
    "expiry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_name",
    "source_date",
    "source_url",
    "full_name",
    "given_name",
    "family_name",
    "alternate_names",
    "description",
    "sex",
    "date_of_birth",
    "age",
    "home_street",
    "home_neighborhood",
    "home_city",
    "home_state",
    "home_postal_code",
    "home_country",
    "photo_url",
    "profile_urls",
]
# PFIF 1.4 §3.3, note record fields, in order
NOTE = [
    "note_record_id",
    "person_record_id",
    "linked_person_record_id",
    "entry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_date",
    "author_made_contact",
    "status",
    "email_of_found_person",
    "phone_of_found_person",
    "last_known_location",
    "text",
    "photo_url",
]
PERSON_REQUIRED = ("person_record_id", "source_date", "full_name")
NOTE_REQUIRED = ("note_record_id", "author_name", "source_date", "text")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
RECORD_ID = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}/[^\s]+$")
DATE_OF_BIRTH = re.compile(r"^\d{4}(-\d\d(-\d\d)?)?$")
SEX = ("female", "male", "other")
STATUS = ("information_sought", "is_note_author", "believed_alive", "believed_missing", "believed_dead")


def _fields(element: ET.Element, order: list[str], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    position = -1
    for child in element:
        assert child.tag.startswith("{" + NS + "}"), f"{kind}: {child.tag} is outside the PFIF 1.4 namespace"
        name = child.tag[len(NS) + 2 :]
        if kind == "person" and name == "note":
            found.setdefault("notes", []).append(_fields(child, NOTE, "note"))
            continue
        assert name in order, f"{kind}: {name} is not a PFIF 1.4 field"
        assert order.index(name) > position, f"{kind}: {name} out of order"
        position = order.index(name)
        found[name] = child.text or ""
    for name, value in found.items():
        if name in ("entry_date", "expiry_date", "source_date"):
            assert TIME.match(value), f"{kind}: {name} {value!r} is not UTC …Z"
        if name.endswith("record_id"):
            assert RECORD_ID.match(value), f"{kind}: {name} {value!r} is not domain_name/unique_string"
    if kind == "person":
        for name in PERSON_REQUIRED:
            assert found.get(name, "").strip(), f"person: {name} is required"
        assert found.get("sex", "female") in SEX
        assert DATE_OF_BIRTH.match(found.get("date_of_birth", "2000"))
    else:
        for name in NOTE_REQUIRED:
            assert found.get(name, "").strip(), f"note: {name} is required"
        assert found.get("status", "is_note_author") in STATUS
        assert found.get("author_made_contact", "true") in ("true", "false")
    return found


def read(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """``{"persons": [...], "notes": [...]}`` of a PFIF 1.4 document, asserting every rule above."""
    root = ET.fromstring(data)
    assert root.tag == "{" + NS + "}pfif", root.tag
    out: dict[str, list[dict[str, Any]]] = {"persons": [], "notes": []}
    for child in root:
        if child.tag == "{" + NS + "}person":
            out["persons"].append(_fields(child, PERSON, "person"))
        elif child.tag == "{" + NS + "}note":
            note = _fields(child, NOTE, "note")
            assert note.get("person_record_id"), "a top-level note needs person_record_id"
            out["notes"].append(note)
        else:
            raise AssertionError(f"{child.tag} is not a PFIF 1.4 record")
    return out
