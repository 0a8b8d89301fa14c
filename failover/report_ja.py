"""訓練実施報告: a Japanese summary per municipality, for its own ICT-BCP records.

Each member municipality files the drill under its ICT-BCP (総務省「ICT部門の業務継続計画」
ステップ7/16, 様式12 訓練計画), so the summary is written per tenant and covers only that
tenant's systems: what was drilled, the recovery point and time achieved against its own
BIA targets (様式15), what was verified, the problems with corrective actions, and that
the drill environment was removed. Plain text, so it pastes into the municipality's form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dc.clock import jst_text
from failover.worklist import report_lines

MODE_NAMES = {
    "readiness": "復旧準備状況の確認（変更なし）",
    "isolated": "隔離環境での復元訓練",
    "point-in-time": "ランサムウェア想定・時点指定復元訓練",
    "staff-loss": "主センター及び職員喪失想定訓練（分散保管鍵のみで復号）",
    "switchover": "計画切替・切戻し訓練",
    "execute": "遠隔地センターへの切替（本番）",
    "failback": "主センターへの切戻し（本番）",
}
STATUS_NAMES = {
    "passed": "合格（目標達成）",
    "failed": "不合格",
    "aborted": "中断",
    "killed": "異常終了",
    "skipped": "未実施",
    "pending": "未着手",
    "running": "実行中",
}


def jp_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if 0 < seconds < 1:
        return "1秒未満"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}時間" if hours else "",
        f"{minutes}分" if minutes else "",
        f"{secs}秒" if secs or not total else "",
    ]
    return "".join(parts)


def jp_time(value: str | None) -> str:
    return jst_text(value)


def jp_seconds(value: str | None) -> str:
    """A recovery point to the second: the lost interval is read in seconds."""
    return jst_text(value, seconds=True)


def _verdict(flag: bool | None) -> str:
    return "—" if flag is None else "達成" if flag else "未達成"


def _verified(s: dict[str, Any]) -> str:
    done = []
    if s["status"] == "passed" or s.get("bytes"):
        done.append("バックアップ時に記録したSHA-256との一致")
    if s.get("tables"):
        done.append(f"テーブル件数の一致（{len(s['tables'])}表）")
    names = {c["name"]: c["ok"] for c in s.get("checks", [])}
    if any("refused" in n and ok for n, ok in names.items()):
        done.append("他団体の認証情報では参照できないこと")
    if names.get("smoke"):
        done.append("業務確認（スモークテスト）")
    return "、".join(done) or "—"


_CONTROL_SOURCES = {
    "restored": "遠隔地に複製された制御状態の写しから復元",
    "streamed": "ストリーミング・レプリケーションの待機系を昇格",
    "kept": "既に遠隔地にあった制御状態をそのまま使用",
    "empty": "制御状態の写しがなく、空の状態から開始",
}


def _control_lines(cp: dict[str, Any] | None, sites: dict[str, str], japanese: Callable[[str], str] = str) -> list[str]:
    """制御状態（訓練記録・提供申請と承認・監査記録）の引継ぎ: the measured control-plane RPO and what stayed behind."""
    if not cp:
        return []
    copy = cp.get("copy") or {}
    lines = [
        "",
        "   制御状態（訓練記録・提供申請と承認・監査記録）の引継ぎ:",
        f"      {sites.get(cp['site'], cp['site'])}: {_CONTROL_SOURCES.get(cp['source'], cp['source'])}"
        + (f"（{jp_time(copy.get('time'))} 時点の写し）" if copy else ""),
        f"      制御状態のデータ損失（RPO）実績: {jp_duration(cp.get('rpo_seconds'))}",
        f"      監査記録: 第{cp.get('received_seq', 0)}件までを受領し、その後に連続して記録しています。",
    ]
    if cp.get("planned"):
        lines.append("      切替元は先に書込みを停止しており、失われた記録はありません。")
    elif cp.get("source") in ("restored", "streamed"):
        lines.append(f"      第{cp.get('received_seq', 0)}件より後に主センターで記録された内容は不明です。")
    for skipped in cp.get("skipped", []):
        problem = japanese(skipped["problem"])
        lines.append(f"      検証に失敗した写し（{jp_time(skipped.get('time'))}）は使用していません: {problem}")
    return lines


def own_rows(lost: dict[str, Any], tenant: str, tenant_name: str) -> list[dict[str, Any]]:
    """The rows of a system's lost work that are ``tenant``'s to type again (its town column)."""
    return [r for r in lost["rows"] if (r["tenant"] == tenant if "tenant" in r else r["town"] == tenant_name)]


def _shared_lines(
    doc: dict[str, Any], tenant: str, tenant_name: str, japanese: Callable[[str], str] = str
) -> list[str]:
    """A town's lost rows in systems another tenant runs for it (a shared 住基 serving several
    towns): the town must type them again, so its own report lists them, and only its own."""
    if doc["mode"] != "execute":
        return []
    owners = {s["system"]: s for s in doc["systems"]}
    lines = []
    for system, lost in sorted((doc.get("lost") or {}).items()):
        mine = own_rows(lost, tenant, tenant_name)
        if lost.get("tenant") == tenant or not mine:
            continue
        business = owners[system]["business"] if system in owners else lost.get("business", "")
        lines.append(f"  共同利用の {business}（{system}）で失われた貴団体の処理（再入力が必要です）:")
        lines += [f"        {line}" for line in report_lines(dict(lost, rows=mine), japanese)]
    return lines


def render_ja(
    doc: dict[str, Any],
    tenant: str,
    tenant_name: str,
    sites: dict[str, str] | None = None,
    japanese: Callable[[str], str] = str,
) -> str:
    """The summary for one tenant; ``sites`` maps site ids to names such as 遠隔地バックアップセンター（北海道）.
    ``japanese`` puts the core's English lines (errors, warnings) in Japanese: the CLI's catalog."""
    sites = sites or {}
    systems = [s for s in doc["systems"] if s["tenant"] == tenant]
    lines = [
        f"訓練実施報告（{tenant_name}）",
        "",
        f"協議会: {doc['consortium']}",
        f"訓練種別: {MODE_NAMES.get(doc['mode'], doc['mode'])}",
        f"実施日時: {jp_time(doc['declared_at'])} 〜 {jp_time(doc.get('finished_at'))}",
        f"実施場所: {sites.get(doc.get('site') or '', doc.get('site') or '—')}"
        + (f" → {sites.get(doc['target_site'], doc['target_site'])}" if doc.get("target_site") else ""),
        f"訓練番号: {doc['id']}",
        f"結果: {STATUS_NAMES.get(doc['status'], doc['status'])}",
        "",
        "1. 対象業務と結果",
    ]
    if not systems:
        lines.append("   （この訓練に貴団体の業務は含まれていません）")
    for i, s in enumerate(systems, start=1):
        if s.get("source_kind") == "postgres-wal":
            point = f"最終トランザクション {jp_seconds(s.get('snapshot_time'))}（WAL再生）"
        else:
            point = f"{jp_time(s.get('snapshot_time'))} のバックアップ"
        lines += [
            f"  ({i}) {s['business']}（{s['system']}）第{s['tier']}優先: {STATUS_NAMES.get(s['status'], s['status'])}",
            f"      復旧時点: {point}"
            f"（データ損失 実績 {jp_duration(s.get('rpo_seconds'))} / 目標 {jp_duration(s.get('rpo_target'))}: "
            f"{_verdict(s.get('rpo_met'))}）",
            f"      復旧時間: 実績 {jp_duration(s.get('rto_seconds'))} / 目標 {jp_duration(s.get('rto_target'))}: "
            f"{_verdict(s.get('rto_met'))}",
            f"      確認内容: {_verified(s)}",
        ]
        lost = (doc.get("lost") or {}).get(s["system"])
        if doc["mode"] == "execute" and lost:
            # only this town's rows: a shared system's worklist may name its neighbours' residents
            mine = dict(lost, rows=own_rows(lost, tenant, tenant_name))
            lines.append("      失われた処理（再入力が必要です）:")
            lines += [f"        {line}" for line in report_lines(mine, japanese)]
        elif doc["mode"] == "execute" and s.get("snapshot_time") and s.get("rpo_seconds"):
            lines.append(
                f"      失われた期間: {jp_seconds(s['snapshot_time'])} 〜 {jp_seconds(doc['declared_at'])}"
                "（この間の入力・異動・収納は再入力が必要です）"
            )
    lines += _shared_lines(doc, tenant, tenant_name, japanese)
    lines += _control_lines(doc.get("control_plane"), sites, japanese)
    problems = [s for s in systems if s["status"] != "passed"]
    lines += ["", "2. 課題と是正措置"]
    if doc.get("aborted"):
        aborted = japanese(doc["aborted"])
        lines.append(f"  ・訓練は中断されました（理由: {aborted}）。中断後も訓練環境の削除を実施しました。")
    for s in problems:
        lines.append(f"  ・{s['business']}: {japanese(s['error']) if s.get('error') else s['status']}")
        if s.get("fix"):
            lines.append(f"    是正措置: {japanese(s['fix'])}")
    cleanup = doc.get("cleanup") or {}
    for left in cleanup.get("leftovers", []):
        left = japanese(left)
        lines.append(f"  ・訓練環境の削除が完了していません: {left}（'bcpctl drill cleanup' で削除してください）")
    if not problems and not doc.get("aborted") and not cleanup.get("leftovers"):
        lines.append("  ・なし")
    lines += ["", "3. 訓練環境の後片付け"]
    if doc.get("cleanup") is None:
        lines.append("  訓練環境は作成していません（本番環境への復元、または変更を伴わない確認）。")
    elif cleanup.get("leftovers") or not cleanup.get("completed", True):
        lines.append("  削除が完了していません（上記の課題を参照）。")
    else:
        lines.append(
            f"  訓練用に作成した環境 {len(cleanup.get('removed', []))} 件を削除し、削除されたことを確認しました。"
        )
    lines += [
        "",
        "注: 復旧時間は訓練開始（災害発生とみなした時刻）から検証完了まで、データ損失は復旧に用いたバックアップの"
        "取得時刻から災害発生とみなした時刻までの時間です。目標値は貴団体の業務影響分析（ICT-BCP 様式15）によります。",
        "",
    ]
    return "\n".join(lines)
