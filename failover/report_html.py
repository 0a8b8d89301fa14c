"""The HTML report: verdict, what failed and what to fix, timeline, per-system table, trend.

Self-contained (inline CSS and SVG, no scripts, no external requests) so it can be mailed,
archived with the 訓練実施報告 and opened offline at the offsite site. Built from the stored
JSON document, so any past run can be rendered again. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from dc.clock import jst_text
from dc.duration import format_duration

_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "aborted": "#ef6c00", "skipped": "#9e9e9e", "pending": "#9e9e9e"}
_CSS = """
body{font-family:system-ui,'Noto Sans JP',sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;font-size:90%}
th{background:#f4f4f4}.passed{color:#2e7d32}.failed{color:#c62828}.aborted{color:#ef6c00}
.verdict{font-size:160%;font-weight:bold}.fix{background:#fff4e5;border-left:4px solid #ef6c00;padding:.5em 1em}
small{color:#666}
"""


def _t(value: str | None) -> str:
    return jst_text(value, seconds=True)


def _d(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def _met(flag: bool | None) -> str:
    if flag is None:
        return "—"
    return '<span class="passed">met</span>' if flag else '<span class="failed">missed</span>'


def timeline_svg(systems: list[dict[str, Any]], *, width: int = 900) -> str:
    """One row per system: restore then verify, from the declared disaster time (x = 0)."""
    rows = [s for s in systems if s.get("started_at") is not None and s.get("finished_at") is not None]
    if not rows:
        return "<p><small>No system was started.</small></p>"
    end = max(s["finished_at"] for s in rows) or 1.0
    label_w, bar_w, row_h = 190, width - 210, 22
    scale = bar_w / end
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(rows) + 40}" '
        f'role="img" aria-label="timeline">'
    ]
    for i, s in enumerate(rows):
        y = 10 + i * row_h
        x0 = label_w + s["started_at"] * scale
        restore = s["steps"].get("restore", 0.0) * scale
        verify = s["steps"].get("verify", 0.0) * scale
        colour = _COLOURS.get(s["status"], "#9e9e9e")
        title = escape(
            f"{s['system']}: {s['status']}, start {s['started_at']:.1f}s, end {s['finished_at']:.1f}s, "
            f"restore {s['steps'].get('restore', 0):.1f}s (fetch {s['steps'].get('fetch', 0):.1f}s, "
            f"decrypt {s['steps'].get('decrypt', 0):.1f}s busy), verify {s['steps'].get('verify', 0):.1f}s"
        )
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{escape(s["system"])} (G{s["group"]})</text>')
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(restore, 1):.1f}" height="14" fill="{colour}">'
            f"<title>{title}</title></rect>"
        )
        parts.append(
            f'<rect x="{x0 + restore:.1f}" y="{y + 3}" width="{max(verify, 1):.1f}" height="14" '
            f'fill="{colour}" opacity="0.5"><title>{title}</title></rect>'
        )
    axis_y = 10 + len(rows) * row_h + 12
    for tick in range(5):
        x = label_w + bar_w * tick / 4
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" font-size="11">{_d(end * tick / 4)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(history: list[dict[str, Any]], *, width: int = 220, height: int = 40) -> str:
    """Measured RTO across past runs (dots coloured by result); the dashed line is the target."""
    points = [h for h in history if h.get("rto_seconds") is not None]
    if not points:
        return "<small>no measured RTO yet</small>"
    target = next((h["rto_target"] for h in reversed(history) if h.get("rto_target")), None)
    top = max([p["rto_seconds"] for p in points] + [1.0])
    step = width / max(len(points), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    if target and target <= top * 1.5:
        y = height - 4 - (height - 8) * min(target / top, 1.0)
        parts.append(f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c62828" stroke-dasharray="3"/>')
    for i, p in enumerate(points):
        x = step * i + step / 2
        y = height - 4 - (height - 8) * (p["rto_seconds"] / top)
        colour = _COLOURS.get(p["status"], "#9e9e9e")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
            f"<title>{escape(str(p['run_id']))}: {_d(p['rto_seconds'])} ({escape(p['status'])})</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _fixes(doc: dict[str, Any]) -> str:
    items = []
    if doc.get("aborted"):
        items.append(f"<li>The run was aborted: {escape(doc['aborted'])}. Cleanup ran afterwards (see below).</li>")
    if doc.get("error"):
        items.append(f"<li>{escape(doc['error'])}</li>")
    for s in doc["systems"]:
        if s["status"] != "passed":
            fix = f"<br><b>Fix:</b> {escape(s['fix'])}" if s.get("fix") else ""
            items.append(
                f"<li><b>{escape(s['system'])}</b> ({escape(s['status'])}): {escape(s.get('error') or '')}{fix}</li>"
            )
    for c in doc.get("checks", []):
        if not c["ok"]:
            items.append(f"<li>Check <b>{escape(c['name'])}</b> failed: {escape(c['detail'])}</li>")
    cleanup = doc.get("cleanup") or {}
    for left in cleanup.get("leftovers", []):
        items.append(
            f"<li>Cleanup left <b>{escape(left)}</b>. <b>Fix:</b> remove it, or run 'bcpctl drill cleanup' "
            "(every later drill also sweeps it).</li>"
        )
    if not items:
        return "<p>Nothing failed.</p>"
    return f'<div class="fix"><ul>{"".join(items)}</ul></div>'


def control_section(cp: dict[str, Any] | None) -> str:
    """制御状態 Control state: which copy the site took over, the measured control-plane RPO, what stayed behind."""
    if not cp:
        return ""
    copy = cp.get("copy") or {}
    taken = f"copy {escape((copy.get('snapshot') or '')[:8])} taken {_t(copy.get('time'))}" if copy else "no copy"
    skipped = "".join(
        f"<li>skipped copy {escape((s.get('snapshot') or '')[:8])} ({_t(s.get('time'))}): {escape(s['problem'])}</li>"
        for s in cp.get("skipped", [])
    )
    return f"""<h2>制御状態 Control state</h2>
<table><tr><th>site</th><td>{escape(cp["site"])} ← {escape(cp["from_site"])} ({escape(cp["source"])}: {taken})</td></tr>
<tr><th>制御状態の目標復旧時点 control-plane RPO (measured)</th><td>{_d(cp.get("rpo_seconds"))}</td></tr>
<tr><th>audit chain</th><td>continues after entry {cp.get("received_seq", 0)}
<small>{escape((cp.get("received_hash") or "")[:16])}</small></td></tr>
<tr><th>失われた記録 lost</th><td>{escape(cp.get("lost") or "—")}</td></tr>
<tr><th>database</th><td><code>{escape(cp["database"])}</code>{
        " (previous kept as <code>" + escape(cp["kept_aside"]) + "</code>)" if cp.get("kept_aside") else ""
    }</td></tr></table>{f"<ul>{skipped}</ul>" if skipped else ""}"""


def render_html(doc: dict[str, Any], history: dict[str, list[dict[str, Any]]]) -> str:
    status = doc["status"]
    title = f"bcpctl {doc['kind']} {doc['mode']} {doc['id']}"
    rows = []
    for s in doc["systems"]:
        steps = s.get("steps", {})
        checks = "<br>".join(
            f'<span class="{"passed" if c["ok"] else "failed"}">{"✓" if c["ok"] else "✗"}</span> '
            f"{escape(c['name'])}: {escape(c['detail'])}"
            for c in s.get("checks", [])
        )
        rows.append(
            "<tr>"
            f"<td>{escape(s['system'])}{' <small>(dependency)</small>' if s.get('as_dependency') else ''}</td>"
            f"<td>{escape(s['tenant'])}</td><td>{escape(s['business'])}</td><td>{s['tier']} / G{s['group']}</td>"
            f"<td>{escape((s.get('snapshot_id') or '')[:8])}<br><small>{_t(s.get('snapshot_time'))}</small></td>"
            f"<td>{_d(s.get('rpo_seconds'))} / {_d(s.get('rpo_target'))} {_met(s.get('rpo_met'))}</td>"
            f"<td>{_d(s.get('rto_seconds'))} / {_d(s.get('rto_target'))} {_met(s.get('rto_met'))}</td>"
            f"<td>{_d(steps.get('fetch'))} / {_d(steps.get('decrypt'))} / {_d(steps.get('restore'))} / "
            f"{_d(steps.get('verify'))}</td>"
            f"<td>{s.get('bytes', 0):,} B<br><small>{len(s.get('tables') or {})} tables, {s.get('files', 0)} files"
            f'</small></td><td class="{escape(s["status"])}">{escape(s["status"])}</td><td>{checks}</td>'
            f"<td>{trend_svg(history.get(s['system'], []))}</td></tr>"
        )
    run_checks = "".join(
        f'<li class="{"passed" if c["ok"] else "failed"}">{escape(c["name"])}: {escape(c["detail"])}</li>'
        for c in doc.get("checks", [])
    )
    cleanup = doc.get("cleanup") or {}
    removed = ", ".join(escape(r) for r in cleanup.get("removed", [])) or "nothing"
    swept = "".join(
        f"<li>run {escape(w['run_id'])} ({escape(w['was_status'])}): removed "
        f"{escape(', '.join(w['cleanup']['removed']) or 'nothing')}"
        f"{'; left ' + escape(', '.join(w['cleanup']['leftovers'])) if w['cleanup']['leftovers'] else ''}</li>"
        for w in doc.get("swept", [])
    )
    warnings = "".join(f"<li>{escape(w)}</li>" for w in doc.get("warnings", []))
    hooks = "".join(
        f'<li class="{"passed" if h["ok"] else "failed"}">{escape(h["action"])} {escape(h["site"])}: '
        f"{escape(h.get('detail') or '')}</li>"
        for h in doc.get("hooks", [])
    )
    return f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{escape(doc["consortium"])}: {escape(doc["kind"])} <code>{escape(doc["mode"])}</code></h1>
<p class="verdict {escape(status)}">{escape(status.upper())}</p>
<p>Run {escape(doc["id"])} at site <b>{escape(doc.get("site") or "")}</b>{
        " → " + escape(doc["target_site"]) if doc.get("target_site") else ""
    }; declared disaster time {_t(doc["declared_at"])}; finished {_t(doc.get("finished_at"))};
operator {escape(doc.get("operator") or "")}{
        ", approved by " + escape(doc["approver"]) if doc.get("approver") else ""
    }; workers {doc.get("workers")}.</p>
<h2>What failed and what to fix</h2>{_fixes(doc)}
{control_section(doc.get("control_plane"))}
<h2>Timeline</h2><p><small>From the declared disaster time; dark: restore (fetch and decrypt overlap it),
light: verify.</small></p>{timeline_svg(doc["systems"])}
<h2>Systems</h2>
<table><tr><th>system</th><th>tenant</th><th>業務</th><th>tier / group</th><th>snapshot</th>
<th>RPO measured / target</th><th>RTO measured / target</th><th>fetch / decrypt / restore / verify</th>
<th>size</th><th>result</th><th>checks</th><th>RTO trend</th></tr>{"".join(rows)}</table>
<h2>Run checks</h2><ul>{run_checks or "<li>none</li>"}</ul>
{f"<h2>Site hooks (fence, promote, failback)</h2><ul>{hooks}</ul>" if hooks else ""}
<h2>Cleanup</h2><p>Removed and verified gone: {removed}.</p>{
        f"<p>Swept from earlier runs:</p><ul>{swept}</ul>" if swept else ""
    }
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
<p><small>fetch and decrypt are busy seconds summed over workers; restore and verify are wall-clock.
RTO = verified restore − declared time; RPO = reference time − snapshot time.</small></p>
</body></html>
"""
