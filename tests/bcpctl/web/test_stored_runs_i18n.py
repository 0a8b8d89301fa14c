"""A past run reads in its reader's language: the CLI's list and reports, the web's report page.

A run stores its lines for people (errors, warnings, check details) with their templates; a
Japanese operator reading it later must not meet the English the run was stored with, an
English one still reads the English, and no parameter (braces, format specs, markup) can break
the rendering or put markup on the page.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from typing import Any

import pytest

from bcpctl.i18n import shown
from dc.errors import N_, Message, ProblemFound
from failover.records import get_run, load_document
from tests.bcpctl.web.conftest import PASSWORDS, WebSite, basic
from tests.conftest import Cli
from tests.failover.documents import document, store_run

JA = {"BCPCTL_LANG": "ja"}
EN = {"BCPCTL_LANG": "en"}


def _lines(doc: dict[str, Any]) -> list[Message]:
    """Every stored line for people of a run's document that came back as a Message."""
    found: list[Message] = []

    def walk(value: object) -> None:
        if isinstance(value, Message):
            found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key != "messages":
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    return found


def test_a_failed_drill_run_in_japanese_reads_back_in_each_readers_language(
    web_site: WebSite, web_ctx: Any, client: Any, cli: Cli
) -> None:
    config = str(web_site.config_path)
    shutil.rmtree(web_site.root / "offsite")  # the drill cannot open the offsite repository
    ran = cli("drill", "run", "--config", config, "--mode", "readiness", "--tenant", "goka", env=JA)
    assert ran.returncode == 1, ran.stderr
    (run,) = [r for r in json.loads(cli("drill", "list", "--config", config, "--json").stdout) if r["kind"] == "drill"]
    found = load_document(web_ctx.state, run["id"])
    assert found is not None and found[1] is not None
    record, doc = found
    lines = _lines(doc)
    assert lines, doc  # the stored document names its lines' templates
    assert isinstance(record.error, Message)
    english = {str(line) for line in [*lines, record.error]}
    japanese = {shown(line, "ja") for line in [*lines, record.error]}
    assert not english & japanese, english & japanese  # every line has its Japanese

    wide = {"COLUMNS": "2000"}
    listed = cli("drill", "list", "--config", config, env=JA | wide)
    assert shown(record.error, "ja") in listed.stdout and str(record.error) not in listed.stdout, listed.stdout
    listed_en = cli("drill", "list", "--config", config, env=EN | wide)
    assert str(record.error) in listed_en.stdout, listed_en.stdout
    as_list = json.loads(cli("drill", "list", "--config", config, "--json", env=JA).stdout)
    assert as_list[0]["error"] == str(record.error)  # the machine form stays English

    ja = cli("drill", "report", run["id"], "--format", "html", "--config", config, env=JA)
    assert ja.returncode == 0, ja.stderr
    for line in lines:
        assert _escaped(shown(line, "ja")) in ja.stdout, line
    as_json = json.loads(cli("drill", "report", run["id"], "--config", config, env=JA).stdout)
    assert as_json["error"] == doc["error"] and as_json["messages"], as_json  # English values, templates beside

    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    page = client.get(f"/dashboard/drills/{run['id']}")
    assert page.status_code == 200
    for line in lines:
        assert _escaped(shown(line, "ja")) in page.text, line
    api = client.get(f"/api/operator/drills/{run['id']}/report?format=json", headers=basic("audit")).json()
    assert api["error"] == str(doc["error"]) and api["warnings"] == [str(w) for w in doc["warnings"]]
    assert api["messages"]["/error"]["template"] == doc["error"].template


def _escaped(text: str) -> str:
    from html import escape

    return escape(text)


def test_hostile_parameters_and_old_rows_render_without_markup(
    web_site: WebSite, web_ctx: Any, client: Any, cli: Cli
) -> None:
    from sqlalchemy import update

    from failover.records import drill_runs

    when = datetime(2026, 12, 12, 15, 30, tzinfo=UTC)
    hostile = "<script>alert(1)</script>{0} {x:>99} {{"
    missing = N_("no bcpctl repository at file://{root}: the directory does not exist")
    failed = document(when)["systems"][0] | {"status": "failed", "error": Message(missing, root=hostile)}
    doc = document(when) | {
        "id": "drill-hostile",
        "status": "failed",
        "systems": [failed],
        "warnings": [
            Message(
                N_("no PDF report (drills.report_pdf): {error}"),
                error=ProblemFound(N_("{name}: {reason}"), name=hostile, reason=hostile),
            )
        ],
    }
    store_run(web_ctx.state, doc, when)
    old_system = document(when)["systems"][0] | {"status": "failed", "error": "restore failed: disk full"}
    old = document(when) | {
        "id": "drill-old",
        "status": "failed",
        "systems": [old_system],
        "warnings": ["report files not written: Permission denied (/x)"],
    }
    store_run(web_ctx.state, old, when)
    # an entry edited to make str.format reach beyond its parameters reads as the stored line
    tampered = old | {"messages": {"/warnings/0": {"template": "{x.__class__.__mro__}", "params": {"x": "a"}}}}
    with web_ctx.state.begin() as conn:
        conn.execute(update(drill_runs).where(drill_runs.c.id == "drill-old").values(document=json.dumps(tampered)))
    config = str(web_site.config_path)

    html = cli("drill", "report", "drill-hostile", "--format", "html", "--config", config, env=JA)
    assert html.returncode == 0, html.stderr
    assert "<script>" not in html.stdout and "&lt;script&gt;alert(1)&lt;/script&gt;{0} {x:&gt;99} {{" in html.stdout
    assert "PDF のレポートはありません" in html.stdout and "リポジトリがありません" in html.stdout
    for lang in (JA, EN):  # the per-town summary is Japanese for every reader
        text = cli("drill", "report", "drill-hostile", "--format", "ja", "--config", config, env=lang)
        assert text.returncode == 0, text.stderr
        assert f"file://{hostile} に bcpctl リポジトリがありません" in text.stdout, text.stdout
        assert "no bcpctl repository" not in text.stdout

    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    page = client.get("/dashboard/drills/drill-hostile")
    assert page.status_code == 200 and "<script>" not in page.text and "PDF のレポートはありません" in page.text
    old_page = client.get("/dashboard/drills/drill-old")
    assert old_page.status_code == 200 and "report files not written: Permission denied (/x)" in old_page.text
    assert "<class" not in old_page.text and "&lt;class" not in old_page.text
    old_cli = cli("drill", "report", "drill-old", "--format", "ja", "--config", config, env=JA)
    assert old_cli.returncode == 0 and "restore failed: disk full" in old_cli.stdout, old_cli.stderr
    assert get_run(web_ctx.state, "drill-old") is not None


def test_status_names_a_failed_failovers_stored_error_in_the_readers_language(
    web_site: WebSite, web_ctx: Any, cli: Cli
) -> None:
    from failover.records import finish_run, start_run

    when = datetime(2026, 12, 12, 15, 30, tzinfo=UTC)
    error = Message(N_("no bcpctl repository at file://{root}: the directory does not exist"), root="/srv/offsite")
    start_run(
        web_ctx.state,
        "failover-x",
        kind="failover",
        mode="execute",
        consortium="test",
        site="offsite",
        declared_at=when,
        deadline=None,
    )
    finish_run(web_ctx.state, "failover-x", status="failed", error=error, document={"id": "failover-x"})
    config, wide = str(web_site.config_path), {"COLUMNS": "2000"}
    ja = cli("status", "--config", config, env=JA | wide)
    assert shown(error, "ja") in ja.stdout and str(error) not in ja.stdout, ja.stdout
    en = cli("status", "--config", config, env=EN | wide)
    assert str(error) in en.stdout, en.stdout
    as_json = json.loads(cli("status", "--config", config, "--json", env=JA).stdout)
    assert any(str(error) in w and "the newest failover (run failover-x) failed" in w for w in as_json["warnings"])


def test_the_dashboard_shows_a_failed_backups_stored_error_in_japanese(web_ctx: Any, client: Any) -> None:
    from sqlalchemy import update

    from dc.clock import utcnow
    from dc.state import backup_runs
    from monitoring.outcomes import failure_message, record_backup_failure

    refused = ProblemFound(N_("no bcpctl repository at file://{root}: the directory does not exist"), root="/srv/x")
    message = failure_message(refused)
    record_backup_failure(web_ctx.state, web_ctx.config, web_ctx.config_dir, "primary", "goka-juki", utcnow(), message)
    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    page = client.get("/dashboard").text
    assert "リポジトリがありません: ディレクトリが存在しません" in page, (
        page
    )  # the server's path hidden, as on every page
    with web_ctx.state.begin() as conn:  # a row written before error_message existed reads as stored
        conn.execute(update(backup_runs).values(error_message=None))
    old = client.get("/dashboard").text
    assert "the directory does not exist" in old and "ディレクトリが存在しません" not in old


@pytest.mark.parametrize("offsite", [False, True], ids=["offsite-missing", "offsite-present"])
def test_every_check_detail_of_a_stored_readiness_drill_reads_in_japanese(
    web_site: WebSite, web_ctx: Any, client: Any, cli: Cli, offsite: bool
) -> None:
    """Each check's detail bcpctl words (a probe that cannot run, a missing namespace, a refused
    login) is stored with its template: re-rendered later it is Japanese, only ids and paths stay."""
    import yaml

    from bcpctl.commands.runs import japanese
    from tests.bcpctl.test_japanese_fragments import english_words

    config = str(web_site.config_path)
    doc = yaml.safe_load(web_site.config_path.read_text())
    doc["drills"]["steady_state"] = {"command": str(web_site.root / "no-such-probe")}
    web_site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    if not offsite:
        shutil.rmtree(web_site.root / "offsite")
    ran = cli("drill", "run", "--config", config, "--mode", "readiness", "--tenant", "goka", env=JA)
    assert ran.returncode == 1, ran.stderr
    (run,) = [r for r in json.loads(cli("drill", "list", "--config", config, "--json").stdout) if r["kind"] == "drill"]
    found = load_document(web_ctx.state, run["id"])
    assert found is not None and found[1] is not None
    # the run's first problem (a failed check, with the offsite there) names the check in Japanese too
    assert english_words(shown(found[0].error, "ja"), str(web_site.root)) == [], shown(found[0].error, "ja")
    checks = [*found[1]["checks"], *(c for s in found[1]["systems"] for c in s.get("checks", []))]
    assert any(c["name"] == "steady state of production" and not c["ok"] for c in checks), checks
    html = cli("drill", "report", run["id"], "--format", "html", "--config", config, env=JA)
    assert html.returncode == 0, html.stderr
    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    page = client.get(f"/dashboard/drills/{run['id']}")
    assert page.status_code == 200
    for check in checks:
        shown_ja = japanese(check["detail"])
        assert english_words(shown_ja, str(web_site.root)) == [], (check["name"], shown_ja)
        assert _escaped(shown_ja) in html.stdout and _escaped(shown_ja) in page.text, shown_ja
