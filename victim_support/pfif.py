"""PFIF 1.4 person records, for missing-person tracing systems (namespace http://zesty.ca/pfif/1.4).

Elements follow the PFIF 1.4 person field order; ``person_record_id``, ``source_date`` and
``full_name`` are mandatory. ``person_record_id`` is ``<pfif_domain>/<person_ref>``: PFIF
record ids are ``domain_name/unique_string`` with the domain of the home repository (the
tenant's ``tenants.<id>.pfif_domain``), which other systems use to tell records of
different origins apart; a 地方公共団体コード is no domain. Times are UTC ``…Z``, and
``expiry_date`` is always set: Google's Person Finder deleted
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
_SEX = {"1": "male", "2": "female"}  # 9 (不明) is left out rather than guessed
# Characters XML 1.0 forbids even as references.
_INVALID_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def pfif_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _escape_all(values: list[str]) -> list[str]:
    """Escape a column; the common case (nothing to escape) costs two scans of the joined text."""
    joined = "\n".join(values)
    if _INVALID_XML.search(joined):
        values = [_INVALID_XML.sub("", v) for v in values]
    if "&" in joined or "<" in joined or ">" in joined:
        values = [v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for v in values]
    return values


def _elements(tag: str, values: list[str]) -> list[str]:
    return [f"    <pfif:{tag}>{v}</pfif:{tag}>\n" if v else "" for v in _escape_all(values)]


def pfif_document(
    columns: tuple[str, ...],
    rows: list[tuple[str, ...]],
    *,
    domain: str,
    author_name: str,
    entry_date: datetime,
    expiry_date: datetime,
    source_date: datetime,
) -> bytes:
    """A PFIF 1.4 document with one <pfif:person> per row (built column by column for speed)."""
    ix = {name: i for i, name in enumerate(columns)}
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]

    def col(name: str) -> list[str]:
        return list(data[ix[name]]) if name in ix else [""] * len(rows)

    (author,) = _escape_all([author_name])
    (source_name,) = _escape_all([f"{author_name} 住民基本台帳"])
    fixed = (
        f"    <pfif:entry_date>{pfif_time(entry_date)}</pfif:entry_date>\n"
        f"    <pfif:expiry_date>{pfif_time(expiry_date)}</pfif:expiry_date>\n"
        f"    <pfif:author_name>{author}</pfif:author_name>\n"
        f"    <pfif:source_name>{source_name}</pfif:source_name>\n"
        f"    <pfif:source_date>{pfif_time(source_date)}</pfif:source_date>\n"
    )
    names = col("name")
    split = [n.partition("\u3000") for n in names]
    alternates = ["\n".join(v for v in pair if v) for pair in zip(col("name_fallback"), col("name_kana"), strict=True)]
    street = [" ".join(v for v in pair if v) for pair in zip(col("banchi"), col("katagaki"), strict=True)]
    # Children in PFIF 1.4 order (PERSON_FIELDS); absent or empty values produce no element.
    parts = [
        [f"  <pfif:person>\n    <pfif:person_record_id>{domain}/{ref}</pfif:person_record_id>\n{fixed}"
         for ref in col("person_ref")],
        _elements("full_name", names),
        _elements("given_name", [given if sep else "" for _, sep, given in split]),
        _elements("family_name", [family if sep else "" for family, sep, _ in split]),
        _elements("alternate_names", alternates),
        _elements("sex", [_SEX.get(v, "") for v in col("sex")]),
        _elements("date_of_birth", col("birth_date")),
        _elements("home_street", street),
        _elements("home_neighborhood", col("machiaza_name")),
        _elements("home_city", col("city")),
        _elements("home_state", col("pref")),
        _elements("home_postal_code", col("postal_code")),
        ["    <pfif:home_country>JP</pfif:home_country>\n  </pfif:person>\n"] * len(rows),
    ]  # fmt: skip
    body = "".join(map("".join, zip(*parts, strict=True)))
    header = f'<?xml version="1.0" encoding="UTF-8"?>\n<pfif:pfif xmlns:pfif="{NAMESPACE}">\n'
    return (header + body + "</pfif:pfif>\n").encode("utf-8")
