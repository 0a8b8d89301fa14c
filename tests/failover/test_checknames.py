"""A run's checks and steps are named in Japanese where people read them, English where programs do.

Check names are stored as the English the code gives them (run records, ``--json``); the CLI and
the reports match them against :mod:`failover.checknames`' templates. The class under test is
every check the code makes: the literal names found in failover/ and victim_support/, the names
built at run time (a site, a tenant, a route's endpoint, an export drill's step), every timed
step; and the timeline's tooltips in the HTML report, one per result.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from bcpctl.i18n import shown
from dc.errors import Message
from failover.checknames import STEPS, check_name, step_name
from failover.report_html import _COLOURS, _SYMBOLS, timeline_svg, trend_svg
from failover.report_ja import STATUS_NAMES
from tests.bcpctl.test_japanese_fragments import english_words
from tests.failover.documents import PINNED, document, store_run

ROOT = Path(__file__).resolve().parents[2]
WHEN = next(iter(PINNED))


def _calls(package: str, func: str, method: bool = False) -> list[ast.Call]:
    """Calls of ``func(…)`` (or ``x.func(…)`` with ``method``) in a package's sources."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if method and isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name == func:
                found.append(node)
    return found


def _literal_names() -> list[str]:
    """Every check name written as a literal: ``Check("smoke", …)``."""
    names = {
        call.args[0].value
        for package in ("failover", "victim_support")
        for call in _calls(package, "Check")
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    }
    assert {"smoke", "offsite repository opens", "failover targets ready"} <= names
    return sorted(names)


def _export_steps() -> list[str]:
    """The export drill's steps: ``steps.done("request", …)``."""
    steps = {
        call.args[0].value
        for call in _calls("victim_support", "done", method=True)
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    }
    assert {"request", "approvals", "deletion"} <= steps
    return sorted(steps)


#: names built at run time (failover.switchover, failover.verify, failover.isolation, readiness), with
#: the values the line shows as they are
BUILT = [
    ("failover to offsite", ("offsite",)),
    ("failback to primary", ("primary",)),
    ("drill server reachable", ()),
    ("drill directory writable", ()),
    ("probe login refused", ()),
    ("tenant goka's login refused", ("goka",)),
    ("no route from bcp-drill to drill server", ("bcp-drill",)),
    ("no route from bcp-drill to host dr-db1", ("bcp-drill", "dr-db1")),
    ("no route from bcp-drill to goka-juki source", ("bcp-drill", "goka-juki")),
    ("no route from bcp-drill to goka-juki failover target", ("bcp-drill", "goka-juki")),
]
NAMES = [(n, ()) for n in _literal_names()] + BUILT + [(f"訓練 {s}", ()) for s in _export_steps()]


@pytest.mark.parametrize(("name", "values"), NAMES, ids=[n for n, _v in NAMES])
def test_every_check_reads_japanese(name: str, values: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    found = check_name(name)
    assert isinstance(found, Message) and found == name, "a check the code makes has no template in failover.checknames"
    japanese = shown(found, "ja")
    assert japanese != name and english_words(japanese, *values) == [], japanese
    monkeypatch.setenv("BCPCTL_LANG", "en")
    assert shown(found) == name


@pytest.mark.parametrize("step", sorted({"fetch", "decrypt", "restore", "verify", *_export_steps()}))
def test_every_step_reads_japanese(step: str) -> None:
    assert step in STEPS and step_name(step) == step
    assert english_words(shown(step_name(step), "ja")) == [], shown(step_name(step), "ja")


def _titles(svg: str) -> list[str]:
    return re.findall(r"<title>(.*?)</title>", svg)


@pytest.mark.parametrize("status", sorted(set(_COLOURS) | set(_SYMBOLS)))
def test_every_timeline_tooltip_is_japanese_first(status: str) -> None:
    """Each bar's and each trend dot's tooltip: the result's Japanese label, each figure's Japanese word."""
    system = copy.deepcopy(document(WHEN)["systems"][0]) | {"status": status}
    titles = _titles(timeline_svg([system])) + _titles(
        trend_svg([{"run_id": "r1", "rto_seconds": 3.0, "status": status}])
    )
    assert len(titles) == 3
    for title in titles:
        assert STATUS_NAMES[status] in title, title
    for word in ("開始", "終了", "復元", "取得", "復号", "検証"):
        assert all(word in t for t in titles[:2]), titles[0]


def test_drill_report_names_checks_in_japanese(cli: Any, isolated_env: Path) -> None:
    """A stored run rendered again at the CLI: every check name Japanese first, its English beside."""
    doc = document(WHEN)
    doc["status"] = "failed"
    doc["checks"] = [{"name": n, "ok": False, "detail": "x"} for n, _v in NAMES]
    doc["systems"][0]["checks"] = [{"name": "smoke", "ok": True, "detail": "1"}]
    store_run(isolated_env / "control.db", doc, WHEN)
    html = cli("drill", "report", doc["id"], "--format", "html")
    assert html.returncode == 0, html.stderr
    for name, _values in NAMES:
        japanese = shown(check_name(name), "ja")
        assert japanese.replace("'", "&#x27;") in html.stdout, (name, japanese)
    assert "業務確認 (スモークテスト)" in html.stdout
