"""Writing a run's reports to disk and rendering any stored run again on request.

Every run leaves ``<report_dir>/<run id>/report.json``, ``report.html`` (``report.pdf`` too with
``drills.report_pdf: true``) and one ``report-ja-<tenant>.txt`` per municipality involved.
``report_dir`` is ``drills.report_dir`` (relative to the configuration file) or
``$XDG_STATE_HOME/bcpctl/drills``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dc.config import Consortium
from dc.errors import N_, BcpError, Message, UsageError
from dc.storedmessages import indexed
from failover.context import RunContext
from failover.records import load_document, system_history
from failover.report_html import Japanese, render_html
from failover.report_ja import render_ja
from failover.report_pdf import print_pdf
from failover.results import RunResult, to_document
from failover.worklist import write_worklist

FORMATS = ("json", "html", "ja")
#: formats written to a file only
FILE_FORMATS = ("pdf",)


def reports_root(ctx: RunContext) -> Path:
    if ctx.settings.report_dir:
        path = Path(ctx.settings.report_dir)
        return path if path.is_absolute() or ctx.config_dir is None else ctx.config_dir / path
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "bcpctl" / "drills"


def report_tenants(doc: dict[str, Any]) -> list[str]:
    """The tenants with a report: those whose systems ran, and those with lost rows to type again
    in a system another tenant runs for them."""
    lost = [r.get("tenant") for w in (doc.get("lost") or {}).values() for r in w.get("rows", [])]
    return sorted({s["tenant"] for s in doc["systems"]} | {t for t in lost if t})


def write_reports(ctx: RunContext, result: RunResult) -> dict[str, str]:
    """Write the run's JSON, HTML and Japanese reports, its PDF too with ``drills.report_pdf``.

    Returns ``{name: path}``. A PDF that cannot be printed (no Chromium) leaves a warning in the
    run's reports instead: the drill itself is over, and its other reports stand.
    """
    folder = reports_root(ctx) / result.id
    folder.mkdir(parents=True, exist_ok=True)
    if any(lost.get("rows") for lost in result.lost.values()):
        # the reports then name residents whose work was lost: readable by the operators' account only
        folder.chmod(0o700)
    paths = {
        "json": folder / "report.json",
        "html": folder / "report.html",
        **{f"ja:{t}": folder / f"report-ja-{t}.txt" for t in report_tenants(to_document(result))},
    }
    for system, lost in sorted(result.lost.items()):
        if lost.get("rows"):
            csv_path, xlsx_path = write_worklist(lost, folder)
            paths |= {f"worklist:{system}": csv_path, f"worklist-xlsx:{system}": xlsx_path}
    if ctx.settings.report_pdf:
        paths["pdf"] = folder / "report.pdf"
    result.reports = {name: str(path) for name, path in paths.items()}
    history = _jsonable(system_history(ctx.state, [s.system for s in result.systems]))
    html = render_html(to_document(result), history, ctx.japanese)
    if ctx.settings.report_pdf:
        try:
            print_pdf(html, paths["pdf"])
        except BcpError as exc:
            del result.reports["pdf"]
            result.warnings.append(Message(N_("no PDF report (drills.report_pdf): {error}"), error=exc))
            html = render_html(to_document(result), history, ctx.japanese)
    doc = to_document(result)
    paths["json"].write_text(json.dumps(indexed(doc), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths["html"].write_text(html, encoding="utf-8")
    sites = site_names(ctx.config)
    for tenant in report_tenants(doc):
        name = ctx.config.tenants[tenant].name if tenant in ctx.config.tenants else tenant
        paths[f"ja:{tenant}"].write_text(render_ja(doc, tenant, name, sites, ctx.japanese), encoding="utf-8")
    return result.reports


def site_names(config: Consortium) -> dict[str, str]:
    """Site ids as the municipalities name them: 遠隔地バックアップセンター（北海道）."""
    return {key: f"{site.name or key}（{site.prefecture}）" for key, site in config.sites.items()}


def _jsonable(history: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return to_document(history)


def render_report(
    state: Engine,
    run_id: str,
    fmt: str,
    tenant_names: dict[str, str],
    tenant: str | None = None,
    sites: dict[str, str] | None = None,
    japanese: Japanese = str,
) -> str:
    """A stored run rendered again: ``json``, ``html`` or ``ja`` (every tenant, or one).

    ``japanese`` shows the run's stored lines for people (warnings, errors, check details) in
    Japanese, as :attr:`RunContext.japanese <failover.context.RunContext.japanese>` does when the
    run writes its reports; ``json`` keeps their English with :data:`~dc.storedmessages.MESSAGES_KEY`.
    """
    if fmt not in FORMATS:
        raise UsageError(N_("unknown report format '{fmt}' (use {FORMATS})"), fmt=fmt, FORMATS=", ".join(FORMATS))
    found = load_document(state, run_id)
    if found is None:
        raise UsageError(N_("no run '{run_id}' (or the prefix is ambiguous); see 'bcpctl drill list'"), run_id=run_id)
    record, doc = found
    if doc is None:
        raise UsageError(N_("run {id} is {status} and has no report yet"), id=record.id, status=record.status)
    if fmt == "json":
        return json.dumps(indexed(doc), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return render_html(doc, _jsonable(system_history(state, [s["system"] for s in doc["systems"]])), japanese)
    tenants = [tenant] if tenant else report_tenants(doc)
    if tenant and tenant not in report_tenants(doc):
        raise UsageError(N_("run {id} has no system of tenant '{tenant}'"), id=record.id, tenant=tenant)
    return "\n".join(render_ja(doc, t, tenant_names.get(t, t), sites, japanese) for t in tenants)


def write_pdf(state: Engine, run_id: str, out: Path, japanese: Callable[[str], str] = str) -> Path:
    """A stored run's HTML report printed to ``out`` as a PDF (headless Chromium)."""
    return print_pdf(render_report(state, run_id, "html", {}, japanese=japanese), out)
