"""The drill and failover HTML report: bilingual, readable at 1280 px and on a phone, signed off, printable.

Rendered from stored documents of every shape (passed, failed with a fix, aborted with a
leftover, a failover with its control state), with hostile text in every free field; opened in
Chromium at 1280 and 390 px (screenshots in ``test-artifacts/reports/``) and printed to PDF by
the same Chromium (never a hand-drawn PDF); the PDF's text carries the sign-off box.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from failover.report_html import render_html
from tests.bcpctl.web.browser import browser_context
from tests.failover.documents import PINNED, document, store_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"
HOSTILE = '<script>alert(1)</script>"&'
WHEN = next(iter(PINNED))


def _documents() -> dict[str, dict[str, Any]]:
    passed = document(WHEN)
    failed = copy.deepcopy(passed)
    failed["status"] = "failed"
    second = copy.deepcopy(failed["systems"][0])
    second.update(
        system="goka-kokuho",
        business="国民健康保険",
        status="failed",
        error=HOSTILE,
        fix="restore_dsn を空にする " + HOSTILE,
        rto_met=False,
        checks=[{"name": "smoke", "ok": False, "detail": HOSTILE}],
    )
    failed["systems"].append(second)
    aborted = copy.deepcopy(failed)
    aborted.update(status="aborted", aborted="SIGTERM", cleanup={"removed": [], "leftovers": ["db " + HOSTILE]})
    failover = copy.deepcopy(passed)
    failover.update(
        kind="failover",
        mode="execute",
        target_site="offsite",
        approver="bosai-kacho",
        control_plane={
            "site": "offsite",
            "from_site": "primary",
            "source": "restored",
            "copy": {"snapshot": "abcdef0123", "time": WHEN.isoformat()},
            "rpo_seconds": 42.0,
            "received_seq": 7,
            "received_hash": "f" * 64,
            "lost": "entries after seq 7 at primary",
            "database": "/var/lib/bcpctl/control.db",
        },
    )
    return {"passed": passed, "failed": failed, "aborted": aborted, "failover": failover}


@pytest.mark.parametrize("name", list(_documents()))
def test_report_is_japanese_first_with_english_beside_and_a_signoff_box(name: str) -> None:
    doc = _documents()[name]
    page = render_html(doc, {})
    assert '<html lang="ja">' in page and 'name="viewport"' in page
    for ja, en in (("課題と是正措置", "What failed"), ("経過", "Timeline"), ("システム別の結果", "Systems")):
        assert f"{ja} {en}" in page
    assert "確認者" in page and "決裁" in page and "Reviewed by" in page and "Approved by" in page
    assert PINNED[WHEN][:16] in page, "times in JST"
    assert f'<p class="verdict {doc["status"]}"' in page and doc["status"].upper() in page
    assert "<script>" not in page, "every value is escaped"
    coloured = re.findall(r'<(?:span|li) class="(?:passed|failed|aborted|killed)">(.)', page)
    assert coloured and all(mark in "○×■▶－" for mark in coloured), "a result is never colour alone"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


#: in the page: sideways scrolling, and any table cell narrower than three characters
_LAYOUT = """() => {
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  const em = parseFloat(getComputedStyle(document.body).fontSize);
  for (const td of document.querySelectorAll('table.systems td')) {
    const w = td.getBoundingClientRect().width;
    if (td.textContent.trim() && w < 3 * em)
      problems.push(`cell ${w.toFixed(0)}px wide: ${td.textContent.slice(0, 40)}`);
  }
  return problems;
}"""


def test_report_reads_at_1280_and_on_a_390_px_phone(tmp_path: Path) -> None:
    with browser_context(tmp_path / "profile", tmp_path / "downloads") as context:
        page = context.new_page()
        for name in ("failed", "failover"):
            html = tmp_path / f"{name}.html"
            html.write_text(render_html(_documents()[name], {}), encoding="utf-8")
            for width, height in ((1280, 900), (390, 844)):
                page.set_viewport_size({"width": width, "height": height})
                page.goto(html.as_uri())
                _shot(page, f"report-{name}-{width}")
                problems = page.evaluate(_LAYOUT)
                assert not problems, f"{name} at {width} px: " + "\n".join(problems)
                assert page.locator("table.signoff").is_visible()


def test_pdf_is_printed_by_chromium_and_carries_the_signoff(tmp_path: Path) -> None:
    from pypdf import PdfReader

    from failover.report_pdf import print_pdf

    out = print_pdf(render_html(_documents()["failover"], {}), tmp_path / "out" / "report.pdf")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report-failover.pdf").write_bytes(out.read_bytes())
    reader = PdfReader(out)
    assert "Chrom" in str((reader.metadata or {}).get("/Producer", "")) + str(
        (reader.metadata or {}).get("/Creator", "")
    )
    text = "".join(page.extract_text() for page in reader.pages)
    squeezed = re.sub(r"\s+", "", text)
    assert "確認者" in squeezed and "決裁" in squeezed and "Reviewedby" in squeezed
    assert "切替（フェイルオーバー）実施報告" in squeezed and re.sub(r"\s+", "", PINNED[WHEN][:16]) in squeezed


def test_a_missing_chromium_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dc.errors import UsageError
    from failover import report_pdf

    monkeypatch.setenv(report_pdf.CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    with pytest.raises(UsageError, match="no Chromium to print the PDF"):
        report_pdf.print_pdf("<p>x</p>", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_drill_report_prints_a_stored_run_to_pdf(cli: Any, isolated_env: Path, tmp_path: Path) -> None:
    doc = _documents()["failover"]
    store_run(isolated_env / "control.db", doc, WHEN)

    refused = cli("drill", "report", doc["id"], "--format", "pdf")
    assert refused.returncode == 2 and refused.stderr == "bcpctl: error: --format pdf needs --out FILE\n"
    printed = cli("drill", "report", doc["id"], "--format", "pdf", "--out", str(tmp_path / "failover.pdf"))
    assert printed.returncode == 0, printed.stderr
    assert (tmp_path / "failover.pdf").read_bytes().startswith(b"%PDF-")
    missing = cli(
        "drill", "report", doc["id"], "--format", "pdf", "--out", str(tmp_path / "none.pdf"),
        env={"BCPCTL_CHROMIUM": str(tmp_path / "absent")},
    )  # fmt: skip
    assert missing.returncode == 2 and "no Chromium to print the PDF" in missing.stderr
    assert not (tmp_path / "none.pdf").exists()


def _core_line(template: str) -> Any:
    from dc.errors import Message
    from tests.bcpctl.test_core_errors_i18n import _fields

    return Message(template, **{name: f"v{i}" for i, (name, _c, _s) in enumerate(_fields(template))})


def test_the_core_lines_in_a_report_are_japanese_first_with_the_english_beside() -> None:
    """Warnings, errors, fixes, check details, leftovers, skipped control copies and lost-work
    warnings are the core's English lines: with the CLI's catalog each shows its Japanese first."""
    from html import escape

    from bcpctl import i18n
    from tests.bcpctl.test_core_warnings_i18n import core_line_templates

    templates = [t for t in core_line_templates() if i18n.gettext_in("ja", t) != t]
    lines = [_core_line(t) for t in templates[:: max(1, len(templates) // 12)]]
    doc = copy.deepcopy(_documents()["failover"])
    doc.update(status="failed", error=lines[0], aborted=lines[1], warnings=lines[2:5])
    doc["systems"][0].update(status="failed", error=lines[5], fix=lines[6])
    doc["systems"][0]["checks"] = [{"name": "smoke", "ok": False, "detail": lines[7]}]
    doc["checks"] = [{"name": "isolation", "ok": False, "detail": lines[8]}]
    doc["cleanup"] = {"removed": [], "leftovers": [lines[9]]}
    doc["control_plane"]["skipped"] = [{"snapshot": "0123abcd", "time": WHEN.isoformat(), "problem": lines[10]}]
    english_only = render_html(doc, {})
    page = render_html(doc, {}, lambda line: i18n.shown(line, "ja"))
    for line in lines[:11]:
        japanese = i18n.shown(line, "ja")
        assert japanese != str(line), line.template
        assert escape(japanese) not in english_only
        assert f'{escape(japanese)} <span class="en">{escape(str(line))}</span>' in page, line.template
