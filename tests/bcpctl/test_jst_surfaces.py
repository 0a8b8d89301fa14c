"""Every surface a person reads shows JST with its label, on the JST date; --json keeps ISO 8601.

The clock is pinned at 00:30 and at 08:59 JST, the two ends of the hours in which UTC's date is
still the day before: a surface that slices the stored UTC text, or formats without converting,
shows 2026-12-12 there.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dc.clock import JST
from tests.conftest import Cli

PINNED = {
    datetime(2026, 12, 13, 0, 30, tzinfo=JST).astimezone(UTC): "2026-12-13 00:30 JST",
    datetime(2026, 12, 13, 8, 59, tzinfo=JST).astimezone(UTC): "2026-12-13 08:59 JST",
}
ROOT = Path(__file__).resolve().parents[2]
WRONG_DAY = "2026-12-12"


def _doc(when: datetime) -> dict[str, Any]:
    """A finished drill's stored document, every time in it the pinned one (as the run writes them)."""
    iso = when.isoformat()
    return {
        "id": "drill-pinned",
        "kind": "drill",
        "mode": "isolated",
        "consortium": "ibaraki-kikan",
        "status": "passed",
        "site": "offsite",
        "declared_at": iso,
        "finished_at": iso,
        "operator": "ops",
        "workers": 2,
        "systems": [
            {
                "system": "goka-juki",
                "tenant": "goka",
                "business": "住民基本台帳",
                "tier": 1,
                "group": 1,
                "status": "passed",
                "snapshot_id": "0123456789abcdef",
                "snapshot_time": iso,
                "steps": {"fetch": 1.0, "decrypt": 1.0, "restore": 2.0, "verify": 1.0},
                "started_at": 0.0,
                "finished_at": 3.0,
                "rpo_seconds": 60.0,
                "rpo_target": 900.0,
                "rpo_met": True,
                "rto_seconds": 3.0,
                "rto_target": 14400.0,
                "rto_met": True,
                "checks": [],
            }
        ],
        "checks": [],
        "cleanup": {"removed": ["db"], "leftovers": [], "completed": True},
    }


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_reports_show_the_jst_date(when: datetime) -> None:
    from failover.report_html import render_html
    from failover.report_ja import render_ja

    shown = PINNED[when]
    html = render_html(_doc(when), {})
    text = render_ja(_doc(when), "goka", "五霞町")
    for page in (html, text):
        assert shown[:16] in page and "JST" in page
        assert WRONG_DAY not in page, "a report shows the UTC date"


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_drill_list_table_is_jst_and_json_is_iso(when: datetime, cli: Cli, isolated_env: Path) -> None:
    from dc.state import open_state
    from failover.records import finish_run, start_run

    state = open_state(f"sqlite:///{isolated_env / 'control.db'}")
    start_run(
        state,
        "drill-pinned",
        kind="drill",
        mode="isolated",
        consortium="c",
        site="offsite",
        declared_at=when,
        deadline=None,
    )
    finish_run(state, "drill-pinned", status="passed", error=None, document=_doc(when))
    state.dispose()

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
