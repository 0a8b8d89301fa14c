"""Every page a person reads is Japanese first: no English-only line, no code alone, no bare UTC.

The walk is generated from the app's routes: every GET page (operator dashboard, drill
report, audit, partner portal, request status, guide, login, the runbook) is fetched as the
operator, the auditor and the partner would see it, with a request in each state and a stored
run; every page's error (404, 403, 422, 405, the refused login) too. On each page the text of
every block a person reads (heading, paragraph, cell, label, button, option, title, the words
of ``placeholder``/``title``/``aria-label``) must carry Japanese when it carries English words
or a code (``request.created``), line by line: an English line after ``<br>`` is the translation
of the Japanese line above it, an English paragraph marked ``lang="en"`` that of the block before
it. Identifiers, ``<code>``, file names and acronyms are not words to read; names the
configuration gives (sites, towns, accounts) are identifiers. Times read as JST: no ``+00:00``,
``Z`` or ``UTC`` on a page.
The JSON API asked in Japanese answers every refusal's ``detail`` in Japanese.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from bcpctl import runbook
from bcpctl.web import (
    api_operator,
    api_partner,
    dashboard,
    guide,
    login,
    portal,
    portal_enrol,
    portal_evacuees,
    portal_practice,
)
from bcpctl.web.labels import ACTIONS
from bcpctl.web.pages import NOTICES
from dc.clock import JST
from tests.bcpctl.web.conftest import PASSWORDS, approve_both, basic, request_body, signed_get, signed_post
from tests.bcpctl.web.test_evacuees import _login, _person, lookup_client  # noqa: F401 a fixture
from tests.failover.documents import PINNED, document, store_run
from tests.victim_support.conftest import APPROVER_SECRETS
from victim_support.bundle import open_bundle
from victim_support.signing import load_verify_key

#: elements whose whole text is one thing a person reads
_BLOCKS = {
    "title", "h1", "h2", "h3", "h4", "p", "li", "td", "th", "dt", "dd", "label", "button",
    "option", "legend", "summary", "caption", "figcaption", "a",
}  # fmt: skip
_BR = "\x00"
_READ_ATTRS = ("placeholder", "title", "aria-label", "alt")
#: not read as words here: code, and the timeline SVG (its tooltips are translated with the reports)
_SKIPPED = {"script", "style", "code", "pre", "kbd", "samp", "textarea", "svg"}
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")
#: a word to read: letters only, not an acronym (CSV, JST, PDF) nor the product's name
_WORD = re.compile(r"(?<![\w./:@#=-])[A-Za-z][a-z]+(?![\w/:@=-]|\.\w)")
#: a code of the domain (``request.created``, ``name_kana``, ``SAFETY_CONFIRMATION``), never alone;
#: a file's name (``runbook.md``) is a name, not a code
_CODE = re.compile(
    r"(?<![\w./-])(?!\w+\.(?:md|json|csv|xlsx|txt|tar|age|html|pdf|yaml|sig)\b)(?:[a-z]+(?:[._][a-z]+)+|[A-Z]+(?:_[A-Z0-9]+)+)(?![\w/-])"
)
_NAMES = {"bcpctl", "age", "ssh", "keygen", "openssl", "Excel", "Windows", "Chromium", "Edge", "Chrome"}


class _Reader(HTMLParser):
    """Collects each block's text (nested blocks count as their own) and the attributes read."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[list[str]] = []
        self.english: list[bool] = []  # per open block: lang="en", the English beside a Japanese one
        self.tags: list[str] = []
        self.skip = 0
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in _READ_ATTRS:
            if values.get(name):
                self.found.append(str(values[name]))
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.found.append(str(values["value"]))
        if tag == "br" and self.stack:
            self.stack[-1].append(_BR)  # a line of its own: Japanese in it or in the line above
        if tag in ("br", "input", "meta", "link", "img", "hr"):
            return
        self.tags.append(tag)
        if tag in _SKIPPED:
            self.skip += 1
        if tag in _BLOCKS:
            self.stack.append([])
            self.english.append(values.get("lang") == "en")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.tags:
            return
        while self.tags:
            open_tag = self.tags.pop()
            if open_tag in _SKIPPED:
                self.skip -= 1
            if open_tag in _BLOCKS:
                lines = "".join(self.stack.pop()).split(_BR)
                text = _BR.join(" ".join(line.split()) for line in lines).strip(_BR + " ")
                if self.stack and text:
                    self.stack[-1].append(" ")  # the parent reads its own words, the child is judged alone
                beside = self.english.pop() and bool(self.found) and bool(_JAPANESE.search(self.found[-1]))
                if not beside:
                    self.found.append(text)
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1].append("" if self.skip else data)


def english_only(html: str, ids: frozenset[str] = frozenset()) -> list[str]:
    """The blocks of a page that have words to read in English and no Japanese beside them
    (``ids``: the names the configuration gives sites, tenants, partners and accounts)."""
    reader = _Reader()
    reader.feed(html)
    found = []
    for block in reader.found:
        above = ""
        for text in block.split(_BR):
            words = [w for w in _WORD.findall(text) if w not in _NAMES | ids]
            if not _JAPANESE.search(text) and not _JAPANESE.search(above) and (words or _CODE.search(text)):
                found.append(text)
            above = text or above
    return found


def bare_utc(html: str) -> list[str]:
    """Times shown to a person in UTC: an ISO instant with ``+00:00``/``Z``, or the word UTC."""
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
    return re.findall(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:\+00:00|Z)|\bUTC\b[^<]{0,20}", text)


def _pages(routes: list[Any], values: dict[str, str], method: str = "GET") -> list[str]:
    """Every page of the routers for ``method``, its path parameters filled from ``values``."""
    paths = []
    for route in routes:
        if method not in getattr(route, "methods", ()) or route.path.startswith("/api/"):
            continue
        paths.append(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path))
    return paths


ROUTERS = (runbook, login, portal, portal_enrol, portal_evacuees, portal_practice, guide, dashboard)


def _seed(client: Any, web_site: Any, web_ctx: Any) -> dict[str, str]:
    """A pending, an approved-and-delivered and a refused request, a stored run, a partner token."""
    post = lambda **o: signed_post(client, web_site.partner_key, "/api/partner/requests", request_body(**o))  # noqa: E731
    pending = post(disaster_id="pending-one").json()["id"]
    delivered = post().json()["id"]
    approve_both(client, delivered)
    denied = post(disaster_id="denied-one").json()["id"]
    refused = client.post(
        f"/api/operator/requests/{denied}/deny",
        json={"reason": "重複した申請", "approver_secret": APPROVER_SECRETS["goka-suzuki"]},
        headers=basic("goka-suzuki"),
    )
    assert refused.status_code == 200, refused.text
    when = next(iter(PINNED))
    doc = document(when)
    store_run(web_ctx.state, doc, when)
    token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
    return {"pending": pending, "delivered": delivered, "denied": denied, "run": doc["id"], "token": token}


def _csrf(client: Any, who: str) -> str:
    home = client.get("/portal" if who == "partner" else "/dashboard").text
    return home.split('name="csrf" value="')[1].split('"')[0] if 'name="csrf" value="' in home else ""


def _successes(who: str, seeded: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The forms that succeed for ``who``: their answer pages carry the flash lines."""
    if who == "ops":
        return [("/dashboard/tokens", {"partner": "koga", "label": "古河市 防災課"})]
    if who == "goka-suzuki":
        return [(f"/dashboard/requests/{seeded['pending']}/approve", {"approver_secret": APPROVER_SECRETS[who]})]
    if who == "partner":
        form = {"deleted_by": "古河市 佐藤", "note": "全部削除"}
        return [(f"/portal/requests/{seeded['delivered']}/deletion", form)]
    return []


def test_every_page_reads_japanese_first(client: Any, web_site: Any, web_ctx: Any) -> None:
    seeded = _seed(client, web_site, web_ctx)
    routes = [r for module in ROUTERS for r in module.router.routes]
    config = web_ctx.config
    ids = frozenset([*config.sites, *config.tenants, *config.systems, *config.partners, *PASSWORDS])
    seen: dict[str, list[str]] = {}

    def read(who: str, path: str, response: Any) -> None:
        if not response.headers.get("content-type", "").startswith("text/html"):
            return
        problems = english_only(response.text, ids) + bare_utc(response.text)
        if not re.search(r"<title>[^<]+</title>", response.text):  # the tab's name: words only, no markup
            problems.append("<title> holds markup")
        if problems:
            seen[f"{who} {path} ({response.status_code})"] = problems

    for who in ("anonymous", "ops", "goka-suzuki", "audit", "partner"):
        client.cookies.clear()
        if who == "partner":
            assert client.post("/portal/login", data={"token": seeded["token"]}).status_code in (200, 303)
        elif who != "anonymous":
            client.post("/login", data={"name": who, "password": PASSWORDS[who]})
        for request_id in ("pending", "delivered", "denied", "exp-no-such"):
            values = {"request_id": seeded.get(request_id, request_id), "run_id": seeded["run"]}
            values |= {"token": "bcpi_nope", "lang": "ja", "job_id": "nope"}
            for path in _pages(routes, values):
                read(who, path, client.get(path))
            csrf = _csrf(client, who)
            for path in _pages(routes, values, "POST"):
                if path not in ("/logout", "/login", "/portal/login"):
                    read(
                        who,
                        f"POST {path}",
                        client.post(path, data={"csrf": csrf, "approver_secret": "x", "mode": "nope"}),
                    )
        read(who, "/no-such-page", client.get("/no-such-page"))
        for done in NOTICES:
            for page in ("/dashboard", "/portal"):
                read(who, f"{page}?done={done}", client.get(f"{page}?done={done}"))
        read(who, "/dashboard/drills/no-such-run", client.get("/dashboard/drills/no-such-run"))
        read(who, "/portal?tenant=goka&basis=DMA-49-11-3", client.get("/portal?tenant=goka&basis=DMA-49-11-3"))
        read(who, "/portal?tenant=nope", client.get("/portal?tenant=nope&basis=nope"))
        read(who, "PUT /portal", client.put("/portal"))
        read(who, "POST /portal/requests {}", client.post("/portal/requests", data={}))
        for path, form in _successes(who, seeded):
            read(who, f"POST {path} (done)", client.post(path, data={"csrf": _csrf(client, who), **form}))
    client.cookies.clear()
    read("anonymous", "POST /login wrong", client.post("/login", data={"name": "ops", "password": "nope"}))
    read("anonymous", "POST /portal/login wrong", client.post("/portal/login", data={"token": "bcpt_x_y"}))
    read("anonymous", "POST /login empty", client.post("/login", data={}))
    client.post("/login", data={"name": "audit", "password": PASSWORDS["audit"]})
    audit_log = client.get("/dashboard/audit").text  # details read as recorded, their times in JST
    assert re.search(r"<code>expires_at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST</code>", audit_log)
    assert "トークン発行 <code" in audit_log and "ログイン <code" in audit_log
    assert not seen, "\n".join(f"{page}: {problems}" for page, problems in seen.items())


def test_every_api_refusal_asked_in_japanese_answers_in_japanese(client: Any, web_site: Any) -> None:
    """Each operator and partner API route, called wrongly with ``Accept-Language: ja``."""
    ja = {"Accept-Language": "ja"}
    refused: dict[str, str] = {}
    routes = [r for module in (api_operator, api_partner) for r in module.router.routes]
    calls = [(m, re.sub(r"\{(\w+)\}", "no-such", r.path)) for r in routes for m in r.methods]
    calls += [("GET", "/api/operator/no-such-route"), ("PATCH", "/api/partner/requests")]  # 404, 405
    for method, path in calls:
        for headers in (ja, ja | basic("audit"), ja | basic("ops", "wrong-password")):
            response = client.request(method, path, headers=headers, json={"unexpected": 1})
            if response.status_code < 400:
                continue
            body = response.json()
            texts = [body["detail"], *(e["problem"] for e in body.get("errors", []))]
            for text in texts:
                if not _JAPANESE.search(text):
                    refused[f"{method} {path} {response.status_code}"] = text
    assert not refused, refused


#: columns whose values are codes of the registry: the 説明 sheet must say what each value means
_CODED_COLUMNS = {"sex": "性別"}
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def _times(value: object) -> list[str]:
    if isinstance(value, dict):
        return [t for item in value.values() for t in _times(item)]
    if isinstance(value, list):
        return [t for item in value for t in _times(item)]
    return [value] if isinstance(value, str) and _ISO.match(value) else []


def test_the_delivered_bundle_reads_japanese(client: Any, web_site: Any, web_ctx: Any, tmp_path: Path) -> None:
    """What the partner official opens: CSV and workbook headers, the 説明 sheet, manifest.json."""
    request_id = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body()).json()["id"]
    approve_both(client, request_id)
    response = signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}/bundle")
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        tar.extractall(tmp_path / "received", filter="data")
    bundle = next((tmp_path / "received").iterdir())
    verify_key = load_verify_key(web_site.tenant_verify_key)
    opened = open_bundle(bundle, web_site.partner_identity, verify_key, tmp_path / "out", web_ctx.now())
    out = tmp_path / "out"
    for name in ("persons.csv", "persons-excel.csv"):
        header = next(csv.reader(io.StringIO((out / name).read_text(encoding="utf-8-sig"))))
        assert all(_JAPANESE.search(column) for column in header), (name, header)
    book = load_workbook(out / "persons.xlsx")
    assert book.sheetnames == ["名簿", "説明"]
    persons = list(book["名簿"].iter_rows(values_only=True))
    assert all(_JAPANESE.search(str(column)) for column in persons[0]), persons[0]
    explained = {str(k): str(v) for k, v in book["説明"].iter_rows(values_only=True) if k}
    assert all(_JAPANESE.search(k + v) for k, v in explained.items()), explained
    for label in ("データの時点", "作成日時", "保有期限"):
        assert "JST" in explained[label] and "+00:00" not in explained[label], explained[label]
    for key, label in _CODED_COLUMNS.items():
        note = explained[f"{label} ({key})"]
        column = persons[0].index(next(c for c in persons[0] if str(c).startswith(label)))
        values = {str(row[column]) for row in persons[1:] if row[column]}
        assert values and all(f"{v} = " in note for v in values), (key, values, note)
    raw = (out / "manifest.json").read_text(encoding="utf-8")
    assert "\\u" not in raw and "五霞町" in raw
    described = json.loads(raw)["encoding"]
    assert described and all(_JAPANESE.search(text) for text in described.values()), described
    times = _times(json.loads(raw))
    assert times and all(datetime.fromisoformat(t).utcoffset() is not None for t in times), times
    assert opened.manifest["counts"]["rows"] == len(persons) - 1


def test_machine_json_keeps_iso_8601_with_an_offset(client: Any, web_site: Any, web_ctx: Any) -> None:
    """Every GET of the operator and partner API, on seeded data: each time carries its offset."""
    seeded = _seed(client, web_site, web_ctx)
    values = {"request_id": seeded["delivered"], "run_id": seeded["run"], "job_id": "nope", "token_id": "nope"}
    answered = 0
    callers = (
        (api_operator, lambda path: client.get(path, headers=basic("ops"))),
        (api_operator, lambda path: client.get(path, headers=basic("audit"))),
        (api_partner, lambda path: signed_get(client, web_site.partner_key, path)),
    )
    for module, get in callers:
        for route in module.router.routes:
            if "GET" not in route.methods:
                continue
            got = get(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path))
            if got.status_code == 200 and got.headers["content-type"].startswith("application/json"):
                answered += 1
                naive = [t for t in _times(got.json()) if datetime.fromisoformat(t).utcoffset() is None]
                assert not naive, (route.path, naive)
    assert answered >= 8


def test_every_audit_action_the_code_records_has_a_japanese_label() -> None:
    """An action named in the source (``action="…"`` or a module constant) reads Japanese on the audit page."""
    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r'(?:\baction\s*=\s*|^[A-Z_]+ = )"([a-z]+\.[a-z_]+)"', re.M)
    found = {
        match
        for package in ("dc", "failover", "victim_support", "bcpctl")
        for source in (root / package).rglob("*.py")
        for match in pattern.findall(source.read_text(encoding="utf-8"))
    }
    files = {a for a in found if a.rsplit(".", 1)[1] in ("tar", "json", "sig", "py", "age", "md", "yaml")}
    actions = found - files
    assert len(actions) > 25 and not actions - set(ACTIONS), sorted(actions - set(ACTIONS))


def test_a_gone_bundle_is_told_in_jst_on_the_page_and_in_the_api(client: Any, web_site: Any, web_ctx: Any) -> None:
    """Deleted at 00:30 JST (UTC's day before) and expired: the partner reads JST days and times."""
    request_id = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body()).json()["id"]
    approve_both(client, request_id)
    path = f"/api/partner/requests/{request_id}/bundle"
    assert signed_get(client, web_site.partner_key, path).status_code == 200
    real = web_ctx.clock
    tomorrow = (real() + timedelta(days=1)).astimezone(JST).date()
    at = datetime.combine(tomorrow, time(0, 30), tzinfo=JST).astimezone(UTC)

    def told(now: datetime) -> list[str]:
        """The bundle's refusal at ``now`` (the server's clock): the portal page and the API's line."""
        web_ctx.clock = lambda: now
        token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
        client.post("/portal/login", data={"token": token})
        api = client.get(path, headers={"Authorization": f"Bearer {token}", "Accept-Language": "ja"}).json()
        return [client.get(f"/portal/requests/{request_id}/bundle").text, api["detail"], api["detail_en"]]

    try:
        for text in told(at + timedelta(days=400)):  # long expired
            assert "JST" in text and "+00:00" not in text, text
        web_ctx.clock = lambda: at
        token = client.post("/api/operator/partners/koga/tokens", json={}, headers=basic("ops")).json()["token"]
        deletion = f"/api/partner/requests/{request_id}/deletion"
        confirmed = client.post(
            deletion, json={"deleted_by": "古河市 佐藤"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert confirmed.status_code == 200, confirmed.text
        for text in told(at):
            assert tomorrow.isoformat() in text and (tomorrow - timedelta(days=1)).isoformat() not in text, text
    finally:
        web_ctx.clock = real


def test_the_evacuee_lookup_pages_read_japanese_first(lookup_client: Any, web_site: Any) -> None:  # noqa: F811
    """A found person, a protected one (and the notice it leaves on the home town's dashboard), a refusal."""
    csrf = _login(lookup_client)
    person = _person(web_site, "not shien_sochi and not yokushi")
    protected = _person(web_site, "shien_sochi")
    form = {"csrf": csrf, "tenant": "goka", "disaster_id": "2026-kanto-eq", "family": person["family_name"],
            "given": person["given_name"], "birth_date": person["birth_date"], "official": "古河市 鈴木"}  # fmt: skip
    hidden = {
        "family": protected["family_name"],
        "given": protected["given_name"],
        "birth_date": protected["birth_date"],
    }
    pages = {
        "found": lookup_client.post("/portal/lookup", data=form),
        "protected": lookup_client.post("/portal/lookup", data={**form, **hidden}),
        "wildcard": lookup_client.post("/portal/lookup", data={**form, "family": "*"}),
        "notices": lookup_client.get("/dashboard", headers=basic("goka-suzuki")),
    }
    assert 'id="notices"' in pages["notices"].text
    config = lookup_client.web_ctx.config
    ids = frozenset([*config.sites, *config.tenants, *config.systems, *config.partners, *PASSWORDS])
    told = {name: english_only(page.text, ids) + bare_utc(page.text) for name, page in pages.items()}
    assert not any(told.values()), told
