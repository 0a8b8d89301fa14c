"""The per-official limit of lookups counts a person, not a spelling of their name.

An enrolled partner declares its officials; the check that the one asking is declared ignores
surrounding whitespace, so the limit must too: otherwise " 小林", "小林 " and "小林\\u3000"
are three officials with three allowances, and a brute force of dates of birth for one name
runs up to the partner's limit instead of the official's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.victim_support.conftest import Site, base_site, site
from tests.victim_support.test_enrolment import do_enrol, keys
from tests.victim_support.test_lookup import ask, with_lookups
from victim_support.errors import PolicyRejected

__all__ = ["base_site", "site"]

OFFICIAL = "坂東市 避難所 小林"


def test_whitespace_around_a_declared_official_gives_no_new_allowance(site: Site, tmp_path: Path) -> None:
    recipient, key = keys(tmp_path)
    do_enrol(site, recipient, str(key) + ".pub", officials=[OFFICIAL])
    with_lookups(site, partners=["bando"], per_official_per_hour=2, per_partner_per_hour=50)
    ask(site, "鈴木", "一郎", "1950-01-01", partner="bando", official=OFFICIAL)
    ask(site, "鈴木", "一郎", "1950-01-02", partner="bando", official=OFFICIAL)
    for spelling in (f" {OFFICIAL}", f"{OFFICIAL} ", f"{OFFICIAL}\u3000", f"\t{OFFICIAL}\n"):
        with pytest.raises(PolicyRejected, match=r"2 lookups in the last hour \(limit 2\)"):
            ask(site, "鈴木", "一郎", "1950-01-03", partner="bando", official=spelling)
