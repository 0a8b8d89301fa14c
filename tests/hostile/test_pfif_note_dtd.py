"""A returned notes document may declare no DTD in any encoding XML allows.

The partner signs what it uploads, but a signed document is still untrusted input: a DTD
hidden from a byte scan by UTF-16 let entities expand inside the control plane's process.
"""

from __future__ import annotations

import pytest

from victim_support.errors import NoteRejected
from victim_support.pfif import NAMESPACE
from victim_support.pfifnote import parse_notes

NOTE = (
    f'<pfif:pfif xmlns:pfif="{NAMESPACE}"><pfif:note>'
    "<pfif:note_record_id>x.example/n1</pfif:note_record_id>"
    "<pfif:person_record_id>x.example/p1</pfif:person_record_id>"
    "<pfif:author_name>a</pfif:author_name>"
    "<pfif:source_date>2026-12-06T00:00:00Z</pfif:source_date>"
    "<pfif:text>&b;</pfif:text></pfif:note></pfif:pfif>"
)
DTD = '<!DOCTYPE pfif [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("UTF-16", "utf-16"),
        ("UTF-16", "utf-16-le"),
        ("UTF-16", "utf-16-be"),
        ("UTF-8", "utf-8-sig"),
        ("ISO-8859-1", "latin-1"),
        (None, "utf-16"),
    ],
)
def test_a_dtd_is_refused_whatever_the_encoding(declared: str | None, codec: str) -> None:
    head = f'<?xml version="1.0" encoding="{declared}"?>\n' if declared else ""
    data = (head + DTD + NOTE).encode(codec)
    with pytest.raises(NoteRejected, match="DTD"):
        parse_notes(data)


def test_a_document_without_a_dtd_in_utf16_still_parses() -> None:
    plain = NOTE.replace("&b;", "テキスト")
    data = ('<?xml version="1.0" encoding="UTF-16"?>\n' + plain).encode("utf-16")
    (note,) = parse_notes(data)
    assert note.text == "テキスト"
