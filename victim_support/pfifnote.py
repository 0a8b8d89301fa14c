"""PFIF 1.4 notes: what a sheltering partner learned about a person, written and read back.

A note (PFIF 1.4 §3.3) names the person by ``person_record_id`` — the id our PFIF file gave
them, ``<pfif_domain>/<person_ref>`` — and carries who wrote it, when, a ``status``
(``is_note_author``, ``believed_alive`` …), ``last_known_location`` (the shelter) and free
text. Partners send notes back as a top-level ``<pfif:note>`` list; what arrives is untrusted,
so :func:`parse_notes` bounds the size, refuses a DTD (no entity can expand), accepts only
PFIF 1.4 note elements in the specification's order, and requires the mandatory ones.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from xml.parsers import expat

from dc.errors import N_
from victim_support.errors import NoteRejected
from victim_support.pfif import NAMESPACE, pfif_time

#: PFIF 1.4 <note> children in the specification's order.
NOTE_FIELDS = (
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
)
#: a top-level note must say which person it is about (PFIF 1.4 §3.3)
NOTE_MANDATORY = ("note_record_id", "person_record_id", "author_name", "source_date", "text")
STATUSES = ("information_sought", "is_note_author", "believed_alive", "believed_missing", "believed_dead")
#: a return of notes is a few hundred people at most; anything larger is not one
MAX_NOTES_BYTES = 1 << 20
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_RECORD_ID = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,63}/\S+$")
_TAG = re.compile(r"^\{" + re.escape(NAMESPACE) + r"\}(\w+)$")


@dataclass(frozen=True)
class Note:
    note_record_id: str
    person_record_id: str
    author_name: str
    source_date: datetime
    text: str
    entry_date: datetime | None = None
    author_made_contact: bool | None = None
    status: str = ""
    last_known_location: str = ""


def notes_document(notes: list[Note]) -> bytes:
    """A PFIF 1.4 document of top-level notes (ElementTree escapes every value)."""
    ET.register_namespace("pfif", NAMESPACE)
    root = ET.Element(f"{{{NAMESPACE}}}pfif")
    for note in notes:
        values = {
            "note_record_id": note.note_record_id,
            "person_record_id": note.person_record_id,
            "entry_date": pfif_time(note.entry_date) if note.entry_date else "",
            "author_name": note.author_name,
            "source_date": pfif_time(note.source_date),
            "author_made_contact": "" if note.author_made_contact is None else str(note.author_made_contact).lower(),
            "status": note.status,
            "last_known_location": note.last_known_location,
            "text": note.text,
        }
        element = ET.SubElement(root, f"{{{NAMESPACE}}}note")
        for name in NOTE_FIELDS:
            if values.get(name):
                ET.SubElement(element, f"{{{NAMESPACE}}}{name}").text = values[name]
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"
    )


def parse_notes(data: bytes) -> list[Note]:
    """The notes of a PFIF 1.4 document, or :class:`NoteRejected` naming the first thing wrong."""
    if len(data) > MAX_NOTES_BYTES:
        raise NoteRejected(
            N_("a notes document of {n_data} bytes is over the {MAX_NOTES_BYTES}-byte bound"),
            n_data=len(data),
            MAX_NOTES_BYTES=MAX_NOTES_BYTES,
        )
    _refuse_dtd(data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise NoteRejected(N_("not well-formed XML: {exc}"), exc=exc) from None
    if root.tag != f"{{{NAMESPACE}}}pfif":
        raise NoteRejected(
            N_("the root element is {tag}, not PFIF 1.4's pfif ({NAMESPACE})"), tag=root.tag, NAMESPACE=NAMESPACE
        )
    return [_note(i, element) for i, element in enumerate(root, 1)]


class _HasDtd(Exception):
    pass


def _dtd_found(*_args: object) -> NoReturn:
    raise _HasDtd


def _refuse_dtd(data: bytes) -> None:
    """Refuse a DTD as the XML parser sees it: a byte scan misses one written in UTF-16, and the
    parser stops at ``<!DOCTYPE`` before any entity is declared, let alone expanded."""
    scan = expat.ParserCreate()
    scan.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    scan.StartDoctypeDeclHandler = _dtd_found
    scan.EntityDeclHandler = _dtd_found
    try:
        scan.Parse(data, True)
    except _HasDtd:
        raise NoteRejected(N_("a notes document may not declare a DTD or entities")) from None
    except expat.ExpatError as exc:
        raise NoteRejected(N_("not well-formed XML: {exc}"), exc=exc) from None


def _note(index: int, element: ET.Element) -> Note:
    if element.tag != f"{{{NAMESPACE}}}note":
        raise NoteRejected(
            N_("element {index} is {tag}: a return carries only PFIF 1.4 notes"), index=index, tag=element.tag
        )
    values: dict[str, str] = {}
    last = -1
    for child in element:
        match = _TAG.match(child.tag)
        name = match.group(1) if match else ""
        if name not in NOTE_FIELDS:
            raise NoteRejected(N_("note {index}: {tag} is not a PFIF 1.4 note field"), index=index, tag=child.tag)
        if NOTE_FIELDS.index(name) <= last:
            raise NoteRejected(N_("note {index}: {name} is repeated or out of PFIF 1.4 order"), index=index, name=name)
        if len(child):
            raise NoteRejected(N_("note {index}: {name} holds elements, not text"), index=index, name=name)
        last = NOTE_FIELDS.index(name)
        values[name] = (child.text or "").strip()
    for name in NOTE_MANDATORY:
        if not values.get(name):
            raise NoteRejected(N_("note {index}: {name} is required"), index=index, name=name)
    for name in ("note_record_id", "person_record_id"):
        if not _RECORD_ID.match(values[name]):
            raise NoteRejected(
                N_("note {index}: {name} '{values}' is not domain/unique"),
                index=index,
                name=name,
                values=values[name][:80],
            )
    status = values.get("status", "")
    if status and status not in STATUSES:
        raise NoteRejected(
            N_("note {index}: status '{status}' is not one of {STATUSES}"),
            index=index,
            status=status[:40],
            STATUSES=", ".join(STATUSES),
        )
    contact = values.get("author_made_contact", "")
    if contact not in ("", "true", "false"):
        raise NoteRejected(N_("note {index}: author_made_contact must be true or false"), index=index)
    return Note(
        note_record_id=values["note_record_id"],
        person_record_id=values["person_record_id"],
        author_name=values["author_name"],
        source_date=_time(index, "source_date", values["source_date"]),
        text=values["text"],
        entry_date=_time(index, "entry_date", values["entry_date"]) if values.get("entry_date") else None,
        author_made_contact=None if not contact else contact == "true",
        status=status,
        last_known_location=values.get("last_known_location", ""),
    )


def _time(index: int, name: str, text: str) -> datetime:
    if not _TIME.match(text):
        raise NoteRejected(
            N_("note {index}: {name} '{text}' is not a UTC time (YYYY-MM-DDThh:mm:ssZ)"),
            index=index,
            name=name,
            text=text[:40],
        )
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise NoteRejected(
            N_("note {index}: {name} '{text}' is not a date"), index=index, name=name, text=text
        ) from None
