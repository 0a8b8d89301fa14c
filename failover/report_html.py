"""The HTML report, Japanese first with the English beside: verdict, what to fix, timeline, systems, sign-off.

Self-contained (inline CSS and SVG, no scripts, no external requests) so it can be mailed,
archived with the 訓練実施報告 and opened offline at the offsite site. Built from the stored
JSON document, so any past run can be rendered again. Every value is escaped.

Read at a desk (1280 px), on a phone (the per-system table turns into one card per system:
no one-character-wide columns) and on paper: A4 print styles and a sign-off box (確認者・決裁)
for the 災害対策本部's file; :mod:`failover.report_pdf` prints it with headless Chromium.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from backup.walsurvivors import RECYCLED
from dc.clock import jst_text
from dc.duration import format_duration
from failover.checknames import check_name
from failover.report_ja import MODE_NAMES, STATUS_NAMES

_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "aborted": "#ef6c00", "skipped": "#9e9e9e", "pending": "#9e9e9e"}
#: a symbol beside every coloured result: never colour alone (printed in black and white too)
_SYMBOLS = {"passed": "○", "failed": "×", "aborted": "■", "killed": "×", "skipped": "－", "running": "▶"}
_KINDS = {"drill": "訓練", "failover": "切替（フェイルオーバー）", "failback": "切戻し（フェイルバック）"}
_CSS = """
*{box-sizing:border-box}
body{font-family:'Noto Sans CJK JP','IPAGothic','Hiragino Sans',system-ui,sans-serif;margin:1.5em auto;
max-width:1180px;padding:0 1em;color:#222;line-height:1.55}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:2px solid #ddd;margin-top:1.6em}
table{border-collapse:collapse;margin:1em 0;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;
font-size:90%;vertical-align:top;text-align:left}th{background:#f4f4f4}
.passed{color:#2e7d32}.failed{color:#c62828}.aborted{color:#ef6c00}
.verdict{font-size:160%;font-weight:bold}.fix{background:#fff4e5;border-left:4px solid #ef6c00;padding:.5em 1em}
small,.en{color:#555}.en{font-size:90%}svg{max-width:100%;height:auto}
.signoff td{height:4.5em;width:25%}.signoff th{width:25%}
@media (max-width:700px){body{margin:.5em auto;padding:0 .6em}
table.systems thead{display:none}table.systems,table.systems tbody,table.systems tr,table.systems td{display:block;
width:100%}table.systems tr{border:1px solid #ccc;border-radius:6px;margin-bottom:.8em;padding:.3em .5em}
table.systems td{border:none;padding:.15em 0}
table.systems td::before{content:attr(data-label);display:block;font-size:80%;color:#666}
.signoff th,.signoff td{display:block;width:auto}}
@media print{@page{size:A4;margin:14mm}body{max-width:none;margin:0;padding:0;font-size:10pt}
tr,.signoff,.fix{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


#: a line the core made, in Japanese (the CLI's catalog through :class:`failover.context.RunContext`)
Japanese = Callable[[str], str]


def _both(line: str, japanese: Japanese) -> str:
    """A line the core made (a warning, an error, a check's detail), escaped: Japanese first, the
    English beside it when the catalog has other words for it."""
    shown = japanese(line)
    if shown == str(line):
        return escape(str(line))
    return f'{escape(shown)} <span class="en">{escape(str(line))}</span>'


def _t(value: str | None) -> str:
    return jst_text(value, seconds=True)


def _d(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def _status(status: str, *, verdict: bool = False) -> str:
    """A result as symbol, Japanese and English; the run's verdict shouts its English (PASSED, FAILED)."""
    name = STATUS_NAMES.get(status, status)
    symbol = _SYMBOLS.get(status, "")
    english = status.upper() if verdict else status
    return f'<span class="{escape(status)}">{symbol} {escape(name)} <span class="en">{escape(english)}</span></span>'


def _met(flag: bool | None) -> str:
    if flag is None:
        return "—"
    return (
        '<span class="passed">○ 達成 <span class="en">met</span></span>'
        if flag
        else '<span class="failed">× 未達成 <span class="en">missed</span></span>'
    )


def timeline_svg(systems: list[dict[str, Any]], *, width: int = 900) -> str:
    """One row per system: restore then verify, from the declared disaster time (x = 0)."""
    rows = [s for s in systems if s.get("started_at") is not None and s.get("finished_at") is not None]
    if not rows:
        return "<p><small>開始したシステムはありません。 No system was started.</small></p>"
    end = max(s["finished_at"] for s in rows) or 1.0
    label_w, bar_w, row_h = 190, width - 210, 22
    scale = bar_w / end
    height = row_h * len(rows) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="経過 timeline">'
    ]
    for i, s in enumerate(rows):
        y = 10 + i * row_h
        x0 = label_w + s["started_at"] * scale
        restore = s["steps"].get("restore", 0.0) * scale
        verify = s["steps"].get("verify", 0.0) * scale
        colour = _COLOURS.get(s["status"], "#9e9e9e")
        title = escape(_bar_title(s))
        symbol = _SYMBOLS.get(s["status"], "")
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{symbol} {escape(s["system"])} (G{s["group"]})</text>')
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


def _status_words(status: str) -> str:
    """A result in a tooltip (plain text): symbol, Japanese, English."""
    return f"{_SYMBOLS.get(status, '')} {STATUS_NAMES.get(status, status)} {status}".strip()


def _bar_title(s: dict[str, Any]) -> str:
    """A timeline bar's tooltip: Japanese first, each figure's English word beside it, as the page."""
    steps = s["steps"]
    return (
        f"{s['system']}: {_status_words(s['status'])}、"
        f"開始 start {s['started_at']:.1f}s、終了 end {s['finished_at']:.1f}s、"
        f"復元 restore {steps.get('restore', 0):.1f}s（取得 fetch {steps.get('fetch', 0):.1f}s、"
        f"復号 decrypt {steps.get('decrypt', 0):.1f}s の処理時間 busy）、検証 verify {steps.get('verify', 0):.1f}s"
    )


def trend_svg(history: list[dict[str, Any]], *, width: int = 220, height: int = 40) -> str:
    """Measured RTO across past runs (dots coloured by result); the dashed line is the target."""
    points = [h for h in history if h.get("rto_seconds") is not None]
    if not points:
        return "<small>RTO の実績なし no measured RTO yet</small>"
    target = next((h["rto_target"] for h in reversed(history) if h.get("rto_target")), None)
    top = max([p["rto_seconds"] for p in points] + [1.0])
    step = width / max(len(points), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    if target and target <= top * 1.5:
        y = height - 4 - (height - 8) * min(target / top, 1.0)
        parts.append(f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c62828" stroke-dasharray="3"/>')
    for i, p in enumerate(points):
        x = step * i + step / 2
        y = height - 4 - (height - 8) * (p["rto_seconds"] / top)
        colour = _COLOURS.get(p["status"], "#9e9e9e")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
            f"<title>{escape(str(p['run_id']))}: {_d(p['rto_seconds'])} ({escape(_status_words(p['status']))})"
            "</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _fixes(doc: dict[str, Any], japanese: Japanese = str) -> str:
    items = []
    if doc.get("aborted"):
        items.append(
            f"<li>中断されました（理由: {_both(doc['aborted'], japanese)}）。中断後に後片付けを実施しました（下記）。"
            f' <span class="en">The run was aborted; cleanup ran afterwards (see below).</span></li>'
        )
    if doc.get("error"):
        items.append(f"<li>{_both(doc['error'], japanese)}</li>")
    for s in doc["systems"]:
        if s["status"] != "passed":
            fix = f"<br><b>是正措置 Fix:</b> {_both(s['fix'], japanese)}" if s.get("fix") else ""
            error = _both(s.get("error") or "", japanese)
            items.append(f"<li><b>{escape(s['system'])}</b> ({_status(s['status'])}): {error}{fix}</li>")
    for c in doc.get("checks", []):
        if not c["ok"]:
            items.append(
                f"<li>確認 <b>{_both(check_name(c['name']), japanese)}</b> が不合格 "
                f"<span class='en'>check failed</span>: {_both(c['detail'], japanese)}</li>"
            )
    cleanup = doc.get("cleanup") or {}
    for left in cleanup.get("leftovers", []):
        items.append(
            f"<li>訓練環境 <b>{_both(left, japanese)}</b> が残っています。"
            "<b>是正措置:</b> 削除するか 'bcpctl drill cleanup' を実行"
            ' <span class="en">(every later drill also sweeps it).</span></li>'
        )
    if not items:
        return '<p>不合格の項目はありません。 <span class="en">Nothing failed.</span></p>'
    return f'<div class="fix"><ul>{"".join(items)}</ul></div>'


def control_section(cp: dict[str, Any] | None, japanese: Japanese = str) -> str:
    """制御状態 Control state: which copy the site took over, the measured control-plane RPO, what stayed behind."""
    if not cp:
        return ""
    copy = cp.get("copy") or {}
    taken = (
        f"{_t(copy.get('time'))} 取得のコピー {escape((copy.get('snapshot') or '')[:8])} "
        f'<span class="en">copy taken {_t(copy.get("time"))}</span>'
        if copy
        else 'コピーなし <span class="en">no copy</span>'
    )
    skipped = "".join(
        f"<li>使わなかったコピー <span class='en'>skipped copy</span> {escape((s.get('snapshot') or '')[:8])} "
        f"({_t(s.get('time'))}): {_both(s['problem'], japanese)}</li>"
        for s in cp.get("skipped", [])
    )
    return f"""<h2>制御状態 Control state</h2>
<table><tr><th>拠点 site</th><td>{escape(cp["site"])} ← {escape(cp["from_site"])} ({escape(cp["source"])}: {
        taken
    })</td></tr>
<tr><th>制御状態の目標復旧時点 control-plane RPO (measured)</th><td>{_d(cp.get("rpo_seconds"))}</td></tr>
<tr><th>監査記録 audit chain</th><td>第{cp.get("received_seq", 0)}件の後に連続 continues after entry {
        cp.get("received_seq", 0)
    }
<small>{escape((cp.get("received_hash") or "")[:16])}</small></td></tr>
<tr><th>失われた記録 lost</th><td>{_both(cp.get("lost") or "—", japanese)}</td></tr>
<tr><th>データベース database</th><td><code>{escape(cp["database"])}</code>{
        "（以前のものは <code>"
        + escape(cp["kept_aside"])
        + '</code> として保管 <span class="en">previous kept</span>）'
        if cp.get("kept_aside")
        else ""
    }</td></tr></table>{f"<ul>{skipped}</ul>" if skipped else ""}"""


def lost_section(lost: dict[str, dict[str, Any]] | None, japanese: Japanese = str) -> str:
    """失われた処理 What was lost: per postgres-wal system, the rows to type again per town (the
    rows themselves are in the worklist files and each town's Japanese report) or the interval."""
    if not lost:
        return ""
    rows = []
    for system, doc in sorted(lost.items()):
        towns: dict[str, int] = {}
        for row in doc.get("rows", []):
            towns[row["town"]] = towns.get(row["town"], 0) + 1
        if doc.get("deferred"):
            what = (
                f"一覧の作成を後回し deferred: {_t(doc.get('recovered_to'))} – {_t(doc['declared_at'])};"
                f" <code>{escape(doc['deferred'])}</code>"
            )
        elif doc.get("survived_lsn") is None:
            none = (
                "残存WAL再生不可 surviving WAL not replayable"
                if doc.get("unreplayed")
                else "残存WALなし no surviving WAL"
            )
            what = f"{none}: {_t(doc.get('recovered_to'))} – {_t(doc['declared_at'])} 失われた lost"
        else:
            counts = "、".join(f"{escape(t)} {n}件" for t, n in towns.items()) or "なし none"
            what = (
                f"再入力 to re-enter: {counts}; {len(doc.get('transactions', []))} transactions to "
                f"{_t(doc.get('survived_to'))}; {_t(doc.get('survived_to'))} – {_t(doc['declared_at'])} 不明 unknown"
            )
        problems = [s["reason"] for s in doc.get("skipped", []) if not s["reason"].startswith(RECYCLED)]
        problems += doc.get("warnings", [])
        more = "".join(f"<li>{_both(p, japanese)}</li>" for p in problems)
        rows.append(
            f"<tr><th>{escape(system)}</th><td>{_t(doc.get('recovered_to'))}</td><td>{what}"
            f"{f'<ul>{more}</ul>' if more else ''}</td></tr>"
        )
    head = "<tr><th>システム system</th><th>遠隔地のWALで復旧 recovered to</th><th>再入力 re-entry</th></tr>"
    return f"""<h2>失われた処理 What was lost</h2>
<table>{head}{"".join(rows)}</table>"""


_SYSTEM_COLUMNS = (
    "システム system",
    "団体 tenant",
    "業務 business",
    "優先度 tier / group",
    "復元した時点 snapshot",
    "RPO 実績 / 目標 measured / target",
    "RTO 実績 / 目標 measured / target",
    "取得 / 復号 / 復元 / 検証 fetch / decrypt / restore / verify",
    "量 size",
    "結果 result",
    "確認 checks",
    "RTO の推移 trend",
)


def _system_row(s: dict[str, Any], history: dict[str, list[dict[str, Any]]], japanese: Japanese = str) -> str:
    steps = s.get("steps", {})
    checks = "<br>".join(
        f'<span class="{"passed" if c["ok"] else "failed"}">{"○" if c["ok"] else "×"}</span> '
        f"{_both(check_name(c['name']), japanese)}: {_both(c['detail'], japanese)}"
        for c in s.get("checks", [])
    )
    cells = (
        f"{escape(s['system'])}{' <small>(依存先 dependency)</small>' if s.get('as_dependency') else ''}",
        escape(s["tenant"]),
        escape(s["business"]),
        f"第{s['tier']}優先 tier {s['tier']} / G{s['group']}",
        f"{escape((s.get('snapshot_id') or '')[:8])}<br><small>{_t(s.get('snapshot_time'))}</small>",
        f"{_d(s.get('rpo_seconds'))} / {_d(s.get('rpo_target'))} {_met(s.get('rpo_met'))}",
        f"{_d(s.get('rto_seconds'))} / {_d(s.get('rto_target'))} {_met(s.get('rto_met'))}",
        " / ".join(_d(steps.get(step)) for step in ("fetch", "decrypt", "restore", "verify")),
        f"{s.get('bytes', 0):,} B<br><small>{len(s.get('tables') or {})} 表 tables, {s.get('files', 0)} files</small>",
        _status(s["status"]),
        checks,
        trend_svg(history.get(s["system"], [])),
    )
    labelled = zip(_SYSTEM_COLUMNS, cells, strict=True)
    return "<tr>" + "".join(f'<td data-label="{escape(h)}">{c}</td>' for h, c in labelled) + "</tr>"


def _swept(w: dict[str, Any], japanese: Japanese) -> str:
    """A sandbox of an earlier run this one removed (or could not)."""
    left = ", ".join(_both(x, japanese) for x in w["cleanup"]["leftovers"])
    return (
        f"<li>実行 run {escape(w['run_id'])} ({escape(w['was_status'])}): 削除 removed "
        f"{escape(', '.join(w['cleanup']['removed'])) or 'なし nothing'}{'; 残存 left ' + left if left else ''}</li>"
    )


def _signoff() -> str:
    """Blank boxes for the people who sign the report on paper (確認者 reviews, 決裁 approves)."""
    return """<h2>確認・決裁 Sign-off</h2>
<table class="signoff" aria-label="確認・決裁 sign-off">
<tr><th>確認者（所属・氏名）<br><span class="en">Reviewed by</span></th><td></td>
<th>確認日・印<br><span class="en">Date, seal</span></th><td></td></tr>
<tr><th>決裁者（所属・氏名）<br><span class="en">Approved by</span></th><td></td>
<th>決裁日・印<br><span class="en">Date, seal</span></th><td></td></tr>
<tr><th>所見<br><span class="en">Remarks</span></th><td colspan="3"></td></tr>
</table>"""


def render_html(doc: dict[str, Any], history: dict[str, list[dict[str, Any]]], japanese: Japanese = str) -> str:
    """The report; ``japanese`` shows the core's own lines (warnings, errors, check details) in
    Japanese first, the English beside (without it, a stored run rendered again: the English)."""
    status = doc["status"]
    kind = _KINDS.get(doc["kind"], doc["kind"])
    mode = MODE_NAMES.get(doc["mode"], doc["mode"])
    title = f"{kind} {mode} — bcpctl {doc['kind']} {doc['mode']} {doc['id']}"
    rows = "".join(_system_row(s, history, japanese) for s in doc["systems"])
    run_checks = "".join(
        f'<li class="{"passed" if c["ok"] else "failed"}">{"○" if c["ok"] else "×"} '
        f"{_both(check_name(c['name']), japanese)}: {_both(c['detail'], japanese)}</li>"
        for c in doc.get("checks", [])
    )
    cleanup = doc.get("cleanup") or {}
    removed = ", ".join(escape(r) for r in cleanup.get("removed", [])) or "なし nothing"
    swept = "".join(_swept(w, japanese) for w in doc.get("swept", []))
    warnings = "".join(f"<li>{_both(w, japanese)}</li>" for w in doc.get("warnings", []))
    hooks = "".join(
        f'<li class="{"passed" if h["ok"] else "failed"}">{"○" if h["ok"] else "×"} {escape(h["action"])} '
        f"{escape(h['site'])}: {_both(h.get('detail') or '', japanese)}</li>"
        for h in doc.get("hooks", [])
    )
    head = "".join(f"<th>{escape(h)}</th>" for h in _SYSTEM_COLUMNS)
    approver = f"、承認者 approved by {escape(doc['approver'])}" if doc.get("approver") else ""
    target = " → " + escape(doc["target_site"]) if doc.get("target_site") else ""
    return f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{escape(doc["consortium"])}: {escape(kind)}実施報告 <span class="en">{escape(doc["kind"])} report</span></h1>
<p>{escape(mode)} <code>{escape(doc["mode"])}</code></p>
<p class="verdict {escape(status)}">{_status(status, verdict=True)}</p>
<table><tr><th>実行番号 run</th><td>{escape(doc["id"])}</td></tr>
<tr><th>実施場所 site</th><td>{escape(doc.get("site") or "")}{target}</td></tr>
<tr><th>災害発生とみなした時刻 declared disaster time</th><td>{_t(doc["declared_at"])}</td></tr>
<tr><th>終了 finished</th><td>{_t(doc.get("finished_at"))}</td></tr>
<tr><th>操作者 operator</th><td>{escape(doc.get("operator") or "")}{approver}</td></tr>
<tr><th>並列数 workers</th><td>{doc.get("workers")}</td></tr></table>
<h2>課題と是正措置 What failed and what to fix</h2>{_fixes(doc, japanese)}
{control_section(doc.get("control_plane"), japanese)}
{lost_section(doc.get("lost"), japanese)}
<h2>経過 Timeline</h2><p><small>災害発生とみなした時刻から。濃い色: 復元（取得・復号を含む）、薄い色: 検証。
From the declared disaster time; dark: restore (fetch and decrypt overlap it), light: verify.</small></p>
{timeline_svg(doc["systems"])}
<h2>システム別の結果 Systems</h2>
<table class="systems"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<h2>実行時の確認 Run checks</h2><ul>{run_checks or "<li>なし none</li>"}</ul>
{f"<h2>拠点の操作 Site hooks (fence, promote, failback)</h2><ul>{hooks}</ul>" if hooks else ""}
<h2>後片付け Cleanup</h2><p>削除し、削除を確認したもの Removed and verified gone: {removed}.</p>{
        f"<p>以前の実行から回収 Swept from earlier runs:</p><ul>{swept}</ul>" if swept else ""
    }
{f"<h2>警告 Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
<p><small>取得・復号は全ワーカーの合計時間、復元・検証は経過時間。RTO = 検証済みの復元 − 災害発生とみなした時刻、
RPO = 基準時刻 − スナップショットの時刻。時刻はすべて日本時間（JST）。
fetch and decrypt are busy seconds summed over workers; restore and verify are wall-clock.
RTO = verified restore − declared time; RPO = reference time − snapshot time.</small></p>
{_signoff()}
</body></html>
"""
