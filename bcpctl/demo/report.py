"""One self-contained HTML page that tells the demo's story: timeline, systems, figures, export.

No scripts, no external assets: the page is read offline, printed for a drill file, or mailed
to the council. Every value is escaped; the page holds no secret and no resident's data (the
export section gives counts only).
"""

from __future__ import annotations

import dataclasses
from html import escape
from pathlib import Path
from typing import Any

from dc.clock import jst_text
from dc.duration import format_duration


def _mib(value: Any) -> str:
    return f"{(value or 0) / 1024**2:,.1f} MiB"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else format_duration(value)


def _timeline(steps: list[dict[str, Any]], width: int = 760) -> str:
    total = sum(s["seconds"] for s in steps) or 1.0
    rows, at = [], 0.0
    for i, s in enumerate(steps):
        x = 300 + at / total * (width - 350)
        w = max(2.0, s["seconds"] / total * (width - 350))
        colour = "#2e7d32" if s["ok"] else "#c62828"
        y = 6 + i * 22
        rows.append(
            f'<text x="0" y="{y + 13}" font-size="12">{escape(s["name"][:44])}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" fill="{colour}"/>'
            f'<text x="{min(x + w + 4, width - 40):.1f}" y="{y + 13}" font-size="11">{s["seconds"]:.1f}s</text>'
        )
        at += s["seconds"]
    height = 12 + len(steps) * 22
    return f'<svg width="{width}" height="{height}" role="img" aria-label="timeline">{"".join(rows)}</svg>'


def _systems_table(title: str, systems: list[dict[str, Any]]) -> str:
    if not systems:
        return f"<h3>{escape(title)}</h3><p>not run</p>"
    columns = ("団体 tenant", "システム system", "業務", "RTO / 目標", "RPO / 目標", "検証")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    body = []
    for s in systems:
        ok = s["verified"] and s.get("rto_met") is not False and s.get("rpo_met") is not False
        body.append(
            "<tr>"
            f"<td>{escape(s['tenant'])}</td><td>{escape(s['system'])}</td><td>{escape(s.get('business') or '')}</td>"
            f"<td>{_seconds(s['rto_seconds'])} / {_seconds(s['rto_target_seconds'])}</td>"
            f"<td>{_seconds(s['rpo_seconds'])} / {_seconds(s['rpo_target_seconds'])}</td>"
            f'<td class="{"ok" if ok else "bad"}">{"合格 passed" if ok else "不合格 FAILED"}</td>'
            "</tr>"
        )
    return f"<h3>{escape(title)}</h3><table>{head}{''.join(body)}</table>"


def _plan_table(plan: dict[str, Any]) -> str:
    if not plan:
        return ""
    head = "<tr><th>順位 tier</th><th>№</th><th>専門部会</th><th>業務</th><th>RPO</th><th>RTO</th><th>前提</th></tr>"
    rows = "".join(
        f"<tr><td>{group['tier']}</td><td>{escape(s['number'] or '')}</td><td>{escape(s['group'] or '')}</td>"
        f"<td>{escape(s['business'])}</td><td>{_seconds(s['rpo_seconds'])}</td><td>{_seconds(s['rto_seconds'])}</td>"
        f"<td>{escape('、'.join(s['depends_on']))}</td></tr>"
        for group in plan["groups"]
        for s in group["systems"]
    )
    title = f"復旧計画 Recovery plan of {plan['name']} ({plan['systems']} systems)"
    return f"<h2>{escape(title)}</h2><table>{head}{rows}</table>"


def render_report(summary: Any) -> str:
    is_instance = dataclasses.is_dataclass(summary) and not isinstance(summary, type)
    d = dataclasses.asdict(summary) if is_instance else dict(summary)
    steps = d["steps"]
    b, r, e = d["backup"], d["replication"], d["export"]
    verdict = "全工程 合格 — every step passed" if d["ok"] else "不合格あり — a step FAILED"
    step_rows = "".join(
        f"<tr><td>{i}</td><td>{escape(s['name'])}</td><td>{s['seconds']:.1f} s</td>"
        f'<td class="{"ok" if s["ok"] else "bad"}">{"ok" if s["ok"] else escape(s.get("error") or "FAILED")}</td></tr>'
        for i, s in enumerate(steps, 1)
    )
    dedup = ""
    if b.get("bytes_in"):
        ratio = b["bytes_stored"] / b["bytes_in"]
        dedup = (
            f"<tr><td>day 1 full backup</td><td>{_mib(b['bytes_in'])} read → {_mib(b['bytes_stored'])} stored "
            f"({ratio:.0%} after dedup, compression and encryption)</td></tr>"
            f"<tr><td>day 2 incremental</td><td>{_mib(b.get('incremental_bytes_in'))} in scope, "
            f"{_mib(b.get('incremental_bytes_read'))} re-read, {_mib(b['incremental_added_bytes'])} added</td></tr>"
        )
    replication = (
        f"<tr><td>offsite received</td><td>{r.get('objects', 0)} ciphertext objects, {_mib(r.get('bytes'))}</td></tr>"
        f"<tr><td>verified without a key</td><td>{'yes' if r.get('verified_without_key') else 'NO'}: "
        f"{r.get('objects_verified', 0)} objects re-hashed, manifest #{r.get('manifest_sequence')}</td></tr>"
    )
    export = "<p>not run</p>"
    if e:
        export = (
            "<table>"
            f"<tr><td>request</td><td>{escape(e['request'])}: {escape(e['partner'])} ← {escape(e['tenant'])}, "
            f"{escape(e['basis'])}</td></tr>"
            f"<tr><td>町字 areas</td><td>{escape('、'.join(e['areas']))}</td></tr>"
            f"<tr><td>rows</td><td>{e['rows']} listed, {e['excluded_rows']} protected rows (支援措置・抑止) "
            f"excluded, {e.get('cp932_lossy_rows') or 0} names outside CP932 flagged</td></tr>"
            f"<tr><td>built from</td><td>site {escape(e['site'])}, as of {jst_text(e['as_of'])}, "
            f"replication lag {escape(str(e['replication_lag']))}</td></tr>"
            f"<tr><td>opened by the partner</td><td>{'yes' if e['opened_by_partner'] else 'NO'}; with the age "
            f"command: {({True: 'yes', False: 'NO', None: 'age not installed'})[e.get('opened_with_age_cli')]}"
            f"</td></tr>"
            f"<tr><td>approved by</td><td>{_approvers(e.get('approved_by', []))}</td></tr>"
            f"<tr><td>audit chain</td><td>{'verified' if e['audit_ok'] else 'BROKEN'} "
            f"({e.get('audit_entries', 0)} entries)</td></tr>"
            "</table>"
        )
    control = _control(d.get("control_plane") or {}, d.get("status") or {})
    links = "".join(
        f'<li><a href="{escape(Path(path).as_uri())}">{escape(kind)} report</a></li>'
        for kind, path in d.get("reports", {}).items()
        if path
    )
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>bcpctl demo — 業務継続 演習報告</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 60em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
td, th {{ border: 1px solid #bbb; padding: .25em .5em; text-align: left; }}
.ok {{ color: #2e7d32; font-weight: bold; }} .bad {{ color: #c62828; font-weight: bold; }}
</style></head><body>
<h1>業務継続 演習報告 — bcpctl demo</h1>
<p class="{"ok" if d["ok"] else "bad"}">{verdict}</p>
<p>作業ディレクトリ working directory: <code>{escape(d["workdir"])}</code></p>
<h2>経過 Timeline</h2>
{_timeline(steps)}
<table><tr><th>#</th><th>step</th><th>time</th><th>result</th></tr>{step_rows}</table>
{_plan_table(d.get("plan") or {})}
<h2>システム別 復旧 Per-system recovery (RTO / RPO)</h2>
{_systems_table("フェイルオーバー Failover after the disaster", d["failover"])}
{_systems_table("要員喪失演習 Staff-loss drill (escrow shares only)", d["drill"])}
<h2>重複排除 Backup and dedup</h2><table>{dedup}</table>
<h2>遠隔地複製 Replication</h2><table>{replication}</table>
<h2>制御状態 Control state after the failover</h2>
{control}
<h2>被災者支援 Victim-support export</h2>
{export}
<h2>詳細 Detailed reports</h2><ul>{links}</ul>
</body></html>
"""


def _control(cp: dict[str, Any], status: dict[str, Any]) -> str:
    """Which site serves, whether anything protects it, and what the control state brought across."""
    if not cp:
        return "<p>not run</p>"
    lost = cp.get("lost_audit_entries") or {}
    protected = status.get("protected")
    return (
        "<table>"
        f"<tr><td>稼働拠点 active site</td><td>{escape(str(status.get('active_site') or cp.get('active_site')))}"
        f" (since {jst_text(status.get('since'))})</td></tr>"
        f'<tr><td>保護 protected by a second site</td><td class="{"ok" if protected else "bad"}">'
        f"{'yes' if protected else 'NO — nothing protects the active site yet'}</td></tr>"
        f"<tr><td>制御状態 control state</td><td>{escape(str(cp.get('source')))} from the copy of "
        f"{jst_text(cp.get('copy_time'))}; {cp.get('audit_entries', 0)} audit entries</td></tr>"
        f"<tr><td>制御状態のRPO control-plane RPO (measured)</td><td>{_seconds(cp.get('rpo_seconds'))}</td></tr>"
        f"<tr><td>監査記録 audit chain across the failover</td><td>"
        f"{'verified' if cp.get('audit_verified_across_failover') else 'NOT VERIFIED'}</td></tr>"
        f"<tr><td>失われた記録 lost audit entries</td><td>{escape(str(lost.get('statement') or '—'))}</td></tr>"
        f"<tr><td>partner portal token</td><td>{'valid at the offsite' if cp.get('partner_token_valid') else 'NO'}"
        "</td></tr></table>"
    )


def write_report(path: Path, summary: Any) -> Path:
    path.write_text(render_report(summary), encoding="utf-8")
    return path


def _approvers(approvals: list[dict[str, str]]) -> str:
    """Who approved, with the credential each signed with (the secret itself is never shown)."""
    return ", ".join(f"{escape(a['approver'])} ({escape(a['credential'])})" for a in approvals) or "—"
