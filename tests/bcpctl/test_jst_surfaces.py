"""Every surface a person reads shows JST with its label, on the JST date; --json keeps ISO 8601.

The clock is pinned at 00:30 and at 08:59 JST, the two ends of the hours in which UTC's date is
still the day before: a surface that slices the stored UTC text, or formats without converting,
shows 2026-12-12 there.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.failover.documents import PINNED, WRONG_DAY, document, store_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_reports_show_the_jst_date(when: datetime) -> None:
    from failover.report_html import render_html
    from failover.report_ja import render_ja

    shown = PINNED[when]
    html = render_html(document(when), {})
    text = render_ja(document(when), "goka", "五霞町")
    for page in (html, text):
        assert shown[:16] in page and "JST" in page
        assert WRONG_DAY not in page, "a report shows the UTC date"


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_drill_list_table_is_jst_and_json_is_iso(when: datetime, cli: Cli, isolated_env: Path) -> None:
    store_run(isolated_env / "control.db", document(when), when)

    human = cli("drill", "list", env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    assert PINNED[when] in human.stdout and WRONG_DAY not in human.stdout
    machine = json.loads(cli("drill", "list", "--json").stdout)
    assert datetime.fromisoformat(machine[0]["declared_at"]) == when
    assert machine[0]["declared_at"].endswith("+00:00"), "machine output keeps an explicit offset"


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_web_pages_show_times_through_the_jst_filter(when: datetime) -> None:
    from bcpctl.web.pages import templates

    env = templates.env
    page = env.from_string("{{ t|jst }} / {{ s|jst }}").render(t=when, s=when.isoformat())
    assert page == f"{PINNED[when]} / {PINNED[when]}"


#: names under which a time reaches a template or a human renderer
_TIME_NAMES = r"(?:\w+_at|as_of|since|time|newest|oldest|valid_until|created|expires)"


def test_templates_render_every_time_through_jst() -> None:
    """Any ``{{ … x_at … }}`` in a page goes through ``|jst`` (or the ``ts`` macro that applies it)."""
    offenders = []
    for template in sorted((ROOT / "bcpctl/web/templates").glob("*.html")):
        for expr in re.findall(r"{{(.*?)}}", template.read_text(encoding="utf-8")):
            if re.search(rf"\.{_TIME_NAMES}\b", expr) and "jst" not in expr and "ts(" not in expr:
                offenders.append(f"{template.name}: {{{{{expr}}}}}")
    assert not offenders, offenders


def test_commands_never_slice_a_stored_time() -> None:
    """``row["time"][:19]`` shows the UTC wall clock without a zone: every human table uses output.jst."""
    pattern = re.compile(rf"\[[\"']{_TIME_NAMES}[\"']\]\)?\[:\d+\]")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "bcpctl").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line) or re.search(r"\b(declared_at|as_of|expires_at)\b.*\.strftime\(", line)
    ]
    assert not offenders, offenders


def test_error_messages_name_times_in_jst() -> None:
    """An error a person reads never shows the UTC ISO form of a time (logs keep it: they are for programs).

    victim_support/ is checked with the partner-delivery work that owns its bundle messages.
    """
    pattern = re.compile(r"raise \w+\(.*\{[^}]*\.isoformat\(\)\}")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("dc", "storage", "backup", "replication", "failover", "monitoring", "bcpctl")
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
