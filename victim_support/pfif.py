"""PFIF 1.4 person records, for missing-person tracing systems (namespace http://zesty.ca/pfif/1.4).

Elements follow the PFIF 1.4 person field order; ``person_record_id``, ``source_date`` and
``full_name`` are mandatory. ``person_record_id`` is ``<lg_code>/<person_ref>`` (PFIF record
ids are ``domain/unique``), and ``expiry_date`` is always set: Google's Person Finder deleted
expired records within 60 days, and the receiving municipality's retention is part of the
request. Only fields the request was allowed appear.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

NAMESPACE = "http://zesty.ca/pfif/1.4"

#: PFIF 1.4 <person> children in standard order (as in Person Finder's pfif.py, PFIF_1_4).
PERSON_FIELDS = (
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
)
MANDATORY = ("person_record_id", "source_date", "full_name")
_SEX = {"1": "male", "2": "female"}
# Characters XML 1.0 forbids even as references.
_INVALID_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def pfif_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _escape(text: str) -> str:
    text = _INVALID_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pfif_document(
    columns: tuple[str, ...],
    rows: list[list[str]],
    *,
    lg_code: str,
    author_name: str,
    entry_date: datetime,
    expiry_date: datetime,
    source_date: datetime,
) -> bytes:
    """A PFIF 1.4 document with one <pfif:person> per row."""
    ix = {name: i for i, name in enumerate(columns)}
    fixed = {
        "entry_date": pfif_time(entry_date),
        "expiry_date": pfif_time(expiry_date),
        "author_name": _escape(author_name),
        "source_name": _escape(f"{author_name} 住民基本台帳"),
        "source_date": pfif_time(source_date),
        "home_country": "JP",
    }
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<pfif:pfif xmlns:pfif="{NAMESPACE}">\n']
    get = {name: (lambda row, i=i: row[i]) for name, i in ix.items()}
    for row in rows:
        record = dict(fixed)
        record["person_record_id"] = f"{lg_code}/{row[ix['person_ref']]}"
        if "name" in ix:
            name = row[ix["name"]]
            record["full_name"] = name
            family, _, given = name.partition("\u3000")
            if given:
                record["family_name"], record["given_name"] = family, given
            alternates = [get[k](row) for k in ("name_fallback", "name_kana") if k in get and get[k](row)]
            if alternates:
                record["alternate_names"] = "\n".join(alternates)
        if "sex" in ix and row[ix["sex"]] in _SEX:
            record["sex"] = _SEX[row[ix["sex"]]]
        if "birth_date" in ix:
            record["date_of_birth"] = row[ix["birth_date"]]
        street = " ".join(row[ix[k]] for k in ("banchi", "katagaki") if k in ix and row[ix[k]])
        if street:
            record["home_street"] = street
        for key, column in (
            ("home_neighborhood", "machiaza_name"),
            ("home_city", "city"),
            ("home_state", "pref"),
            ("home_postal_code", "postal_code"),
        ):
            if column in ix and row[ix[column]]:
                record[key] = row[ix[column]]
        parts.append("  <pfif:person>\n")
        for key in PERSON_FIELDS:
            value = record.get(key)
            if value:
                text = value if key in fixed else _escape(value)
                parts.append(f"    <pfif:{key}>{text}</pfif:{key}>\n")
        parts.append("  </pfif:person>\n")
    parts.append("</pfif:pfif>\n")
    return "".join(parts).encode("utf-8")
