"""Japanese labels for the codes the pages show: statuses, purposes, fields, legal bases, roles.

A code alone (``approved``, ``SAFETY_CONFIRMATION``, ``name_kana``) tells an official in a
shelter nothing, so every code reaches a page through one of these filters as
``日本語 (code)`` or ``日本語 / English``. The purpose, field and basis names are the ones
:mod:`victim_support` holds for the law; the rest are kept here, beside the pages.
tests/bcpctl/web/test_labels.py fails when a code of the domain has no label.
"""

from __future__ import annotations

import json
import re

from markupsafe import Markup, escape

from dc.clock import jst_text
from failover.report_ja import MODE_NAMES
from victim_support.fields import FIELDS
from victim_support.policy import BASES, PURPOSES

#: request, delivery, drill and job statuses, with the symbol beside them (never colour alone):
#: ○ done well, × failed or refused, △ waiting, as Japanese forms mark them
STATUSES: dict[str, tuple[str, str]] = {
    "pending": ("△", "承認待ち / pending"),
    "approved": ("○", "承認済み / approved"),
    "denied": ("×", "却下 / denied"),
    "expired": ("－", "期限切れ / expired"),
    "deleted": ("－", "削除確認済み / deleted"),
    "passed": ("○", "合格 / passed"),
    "failed": ("×", "不合格 / failed"),
    "aborted": ("■", "中断 / aborted"),
    "killed": ("×", "異常終了 / killed"),
    "running": ("▶", "実行中 / running"),
    "skipped": ("－", "省略 / skipped"),
    "queued": ("△", "待機中 / queued"),
}
ROLES: dict[str, str] = {
    "operator": "運用担当 / operator",
    "approver": "承認者 / approver",
    "auditor": "監査担当 / auditor",
}
KINDS: dict[str, str] = {"drill": "訓練 / drill", "failover": "切替 / failover", "failback": "切戻し / failback"}
#: the audit log's actions (victim_support.audit), as an auditor reads them
ACTIONS: dict[str, str] = {
    "account.created": "アカウント作成",
    "account.disabled": "アカウント無効化",
    "approver.enrolled": "承認者の登録",
    "bundle.built": "名簿ファイル作成",
    "bundle.deletion_confirmed": "削除の確認",
    "bundle.downloaded": "名簿のダウンロード",
    "bundle.opened": "名簿の開封",
    "bundle.refused": "名簿の受取拒否",
    "control.promoted": "制御DBの昇格",
    "drill.export": "訓練用の名簿作成",
    "drill.finished": "訓練の終了",
    "drill.requested": "訓練の依頼",
    "export.approve": "提供の承認",
    "export.deny": "提供の却下",
    "lookup.answered": "照会への回答",
    "lookup.approve": "照会の承認",
    "lookup.approved": "照会の承認済み",
    "lookup.protected_notice": "保護対象者の通知",
    "lookup.refused": "照会の拒否",
    "lookup.waiting": "照会の承認待ち",
    "notes.received": "安否情報の受領",
    "partner.enrolled": "提供先の登録",
    "partner.invitation_used": "招待の使用",
    "partner.invited": "提供先の招待",
    "partner.removed": "提供先の削除",
    "request.approved": "申請の承認",
    "request.created": "申請の受付",
    "request.denied": "申請の却下",
    "request.rejected": "申請の拒否",
    "session.login": "ログイン",
    "token.issued": "トークン発行",
    "token.revoked": "トークン失効",
}
#: an ISO 8601 instant with its offset, as audit details and stored documents keep times
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)$")


def status_label(code: str | None) -> Markup:
    """``<span class="badge approved">✓ 承認済み / approved</span>``: a symbol and words, not colour alone."""
    symbol, words = STATUSES.get(code or "", ("?", f"不明 / {code}"))
    return Markup('<span class="badge {0}"><span aria-hidden="true">{1}</span> {2}</span>').format(
        code or "unknown", symbol, words
    )


def _coded(name: str | None, code: str) -> Markup:
    if name is None:
        return Markup("<code>{0}</code>").format(code)
    return Markup('{0} <code lang="en">{1}</code>').format(name, code)


def purpose_label(code: str) -> Markup:
    return _coded(PURPOSES[code][0] if code in PURPOSES else None, code)


def field_label(code: str) -> Markup:
    return _coded(FIELDS.get(code), code)


def basis_label(code: str) -> Markup:
    rule = BASES.get(code)
    return _coded(f"{rule.title}（{rule.law}）" if rule else None, code)


def role_label(code: str) -> str:
    return ROLES.get(code, code)


def kind_label(kind: str, mode: str | None = None) -> str:
    text = KINDS.get(kind, kind)
    return f"{text} · {MODE_NAMES.get(mode, mode)} ({mode})" if mode else text


def action_label(code: str) -> Markup:
    return _coded(ACTIONS.get(code), code)


def _detail(value: object) -> str:
    if isinstance(value, str) and _INSTANT.match(value):
        return jst_text(value, seconds=True)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_detail(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_detail(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def audit_details(details: object) -> Markup:
    """An entry's details (the JSON text the chain hashes) one ``key: value`` a line, as
    recorded except times, which read JST (the entry keeps ISO 8601 with its offset)."""
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return Markup("<code>{0}</code>").format(details)
    if not isinstance(details, dict) or not details:
        return Markup(escape("—"))
    lines = (Markup("<code>{0}: {1}</code>").format(k, _detail(v)) for k, v in details.items())
    return Markup("<br>").join(lines)


def labels(codes: list[str] | tuple[str, ...], label: str) -> Markup:
    """A list of codes, each labelled, one per line."""
    one = {"purpose": purpose_label, "field": field_label, "basis": basis_label}[label]
    return Markup("<br>").join(one(c) for c in codes) if codes else Markup(escape("—"))


FILTERS = {
    "status_label": status_label,
    "purpose_label": purpose_label,
    "field_label": field_label,
    "basis_label": basis_label,
    "role_label": role_label,
    "kind_label": kind_label,
    "labels": labels,
    "action_label": action_label,
    "audit_details": audit_details,
}
