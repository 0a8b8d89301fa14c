"""Every alert's runbook_url opens: ``bcpctl serve`` serves the runbooks, the rules name their sections.

Real HTTP against `bcpctl serve`'s app on loopback: each address ``bcpctl monitoring rules``
writes is fetched, and its fragment must be an element id of the page it returns.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from bcpctl.serve_app import ControllerThread, build_app
from monitoring.controller import ServiceSettings
from monitoring.runbooklinks import rendered_rules, shipped_rules
from monitoring.service import Service, open_service
from tests.bcpctl.test_i18n import _env
from tests.conftest import Cli
from tests.monitoring.conftest import build_lab
from tests.servers.asgi import serving


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            if response.status == 200:
                assert response.headers["content-security-policy"].startswith("default-src 'none'")
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read().decode()


def _ids(page: str) -> set[str]:
    parser = _Ids()
    parser.feed(page)
    return parser.ids


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    lab = build_lab(tmp_path / "lab", {}, control_db=f"sqlite:///{tmp_path / 'control.db'}")
    service: Service = open_service(lab.config, lab.root, ServiceSettings(lease_ttl=3.0, tick=0.1, stop_timeout=5.0))
    try:
        with serving(build_app(service, ControllerThread(service.controller))) as base:
            yield base
    finally:
        service.controller.request_stop()
        service.engine.dispose()


def test_every_alerts_runbook_url_opens_its_section(served: str) -> None:
    rendered = rendered_rules(served + "/")
    alerts = [r["alert"] for g in yaml.safe_load(shipped_rules())["groups"] for r in g["rules"]]
    assert [link.alert for link in rendered.links] == alerts  # one link per alert, none left as a path
    pages: dict[str, set[str]] = {}
    for link in rendered.links:
        page, _, fragment = link.runbook_url.partition("#")
        assert page == f"{served}/runbook/ja" and fragment == f"alert-{link.alert.lower()}"
        if page not in pages:
            status, kind, body = _fetch(page)
            assert (status, kind) == (200, "text/html; charset=utf-8")
            assert '<html lang="ja">' in body and "被災時運用手順書" in body
            pages[page] = _ids(body)
        assert fragment in pages[page], f"{link.alert}: no #{fragment} on {page}"
    status, _, english = _fetch(f"{served}/runbook/en")
    assert status == 200 and '<html lang="en">' in english
    assert {f for f in pages[f"{served}/runbook/ja"] if f.startswith("alert-")} <= _ids(english)


def test_only_the_two_runbooks_are_served(served: str) -> None:
    assert _fetch(f"{served}/runbook/de")[0] == 404
    assert _fetch(f"{served}/runbook/..%2F..%2Fetc%2Fpasswd")[0] == 404
    status, _, body = _fetch(f"{served}/runbook")  # redirected to the Japanese page
    assert status == 200 and '<html lang="ja">' in body


def test_the_rendered_rules_differ_from_the_shipped_ones_in_runbook_urls_only(cli: Cli) -> None:
    shown = cli("monitoring", "rules", "--external-url", "https://bcp.example.invalid/ops/")
    assert shown.returncode == 0, shown.stderr
    ours, shipped = yaml.safe_load(shown.stdout), yaml.safe_load(shipped_rules())
    for group, original in zip(ours["groups"], shipped["groups"], strict=True):
        for rule, before in zip(group["rules"], original["rules"], strict=True):
            url = rule["annotations"].pop("runbook_url")
            path = before["annotations"].pop("runbook_url")
            assert url == "https://bcp.example.invalid/ops" + path
            assert rule == before
    assert len(shown.stdout.splitlines()) == len(shipped_rules().splitlines())  # comments kept too


def test_the_generator_in_json_and_to_a_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    shown = cli("monitoring", "rules", "--external-url", "http://127.0.0.1:9464", "--out", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["out"] == str(out) and doc["rules"] is None and doc["external_url"] == "http://127.0.0.1:9464"
    assert all(link["runbook_url"].startswith("http://127.0.0.1:9464/runbook/ja#alert-") for link in doc["links"])
    assert out.read_text(encoding="utf-8").count('runbook_url: "http://127.0.0.1:9464/runbook/ja#') == len(doc["links"])


@pytest.mark.parametrize(
    ("url", "english", "japanese"),
    [
        (
            "ftp://bcp.example.invalid",
            "--external-url must be an http:// or https:// URL, got ftp://bcp.example.invalid",
            "--external-url は http:// か https:// の URL でなければなりません (指定 ftp://bcp.example.invalid)",
        ),
        (
            "https://bcp.example.invalid/#x",
            "--external-url takes no query or fragment: https://bcp.example.invalid/#x",
            "--external-url にクエリやフラグメントは付けられません: https://bcp.example.invalid/#x",
        ),
        ("http://", "--external-url has no host: http://", "--external-url にホストがありません: http://"),
    ],
)
def test_a_bad_external_url_is_one_line_in_either_language(cli: Cli, url: str, english: str, japanese: str) -> None:
    for lang, line in (({}, english), ({"BCPCTL_LANG": "ja"}, japanese)):
        shown = cli("monitoring", "rules", "--external-url", url, env=_env(lang))
        assert (shown.returncode, shown.stdout, shown.stderr) == (2, "", f"bcpctl: error: {line}\n")
