"""The printable sheet a custodian keeps in a safe: one A4 page per share, Japanese first.

A town's 会計管理者 or 総務課長 who receives a share has never heard of SLIP-39. The sheet says
what the paper is, how to keep it, when and how it is used and whom to call, in Japanese with
English beside it; then the custodian's name, "share i of N, K needed", and the words,
numbered, with the last three marked as the standard's checksum and a check code line over
all of them. SLIP-39 words stay the standard's English words: they are what every SLIP-39
tool reads, and their first four letters identify them.

HTML (``backup/templates/escrow_sheet.html``) is the source; the PDF is that HTML printed by a
headless Chromium (:mod:`dc.printing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from backup.escrowwords import CHECKSUM_WORDS, check_code
from dc.clock import jst_text

_ENV = Environment(loader=PackageLoader("backup", "templates"), autoescape=select_autoescape(default=True))


@dataclass(frozen=True)
class Sheet:
    number: int
    total: int
    threshold: int
    mnemonic: str
    repository_id: str
    repository_url: str
    slot_id: str
    made_at: datetime
    custodian: str = ""
    contact: str = ""


def sheet_html(sheet: Sheet) -> str:
    """One custodian's printable page."""
    return _ENV.get_template("escrow_sheet.html").render(
        number=sheet.number,
        total=sheet.total,
        threshold=sheet.threshold,
        words=sheet.mnemonic.split(),
        checksum_words=CHECKSUM_WORDS,
        check=check_code(sheet.mnemonic),
        custodian=sheet.custodian,
        contact=sheet.contact,
        repository_id=sheet.repository_id,
        repository_url=sheet.repository_url,
        slot_id=sheet.slot_id,
        made=jst_text(sheet.made_at),
    )
