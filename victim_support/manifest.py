"""The manifest inside every bundle: what was sent, why, from which data, and how to check it.

It names the request, the legal basis (with the article) and purposes, the exact columns, the
snapshot the data came from (``as_of``) and the replication lag at build time — so the
receiver knows how stale the list may be — the expiry, row counts (protected rows only as one
combined count), SHA-256 of every file, every row the CP932 copy could not hold and every
private-use character. It holds no resident data beyond the partner's own pseudonymous refs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dc.duration import format_duration
from victim_support.fields import FIELDS
from victim_support.policy import BASES, PURPOSES

FORMAT = "bcpctl-export-manifest/1"


def lag_text(lag_seconds: float | None) -> str:
    return "unknown" if lag_seconds is None else format_duration(lag_seconds)


def build_manifest(
    *,
    request: Any,
    tenant: Any,
    partner: Any,
    source: Any,
    built_at: datetime,
    expires_at: datetime,
    columns: tuple[str, ...],
    rows: int,
    excluded_protected: int,
    areas: list[tuple[str, str]],
    files: dict[str, dict[str, Any]],
    cp932_lossy_rows: list[dict[str, object]] | None,
    private_use: list[dict[str, object]],
    xlsx_replaced_rows: list[dict[str, object]] | None = None,
    csv_formula_guarded_rows: list[dict[str, object]] | None = None,
    xlsx_truncated_rows: list[dict[str, object]] | None = None,
) -> dict[str, Any]:
    rule = BASES[request.basis]
    doc: dict[str, Any] = {
        "format": FORMAT,
        "request": {
            "id": request.id,
            "requested_by": request.requested_by,
            "created_at": request.created_at.isoformat(),
            "approvals": [{"approver": a.approver, "role": a.role, "at": a.at.isoformat()} for a in request.approvals],
        },
        "from": {"name": tenant.name, "lg_code": tenant.lg_code},
        "to": {"name": partner.name, "lg_code": partner.lg_code},
        "disaster": {"id": request.disaster_id, "date": request.disaster_date.isoformat()},
        "basis": {"code": request.basis, "law": rule.law, "title": rule.title},
        "purposes": [{"code": p, "title": PURPOSES[p][0]} for p in request.purposes],
        "fields": [{"key": c, "label": FIELDS[c]} for c in columns],
        "scope": {
            "machiaza": [{"id": a, "name": n} for a, n in areas],
            "support_needed_only": request.scope.support_only,
        },
        "as_of": source.as_of.isoformat(),
        "replication_lag": lag_text(source.lag_seconds),
        "replication_lag_seconds": None if source.lag_seconds is None else round(source.lag_seconds, 3),
        "source": {"site": source.site, "system": source.system, "snapshot": source.snapshot_id[:16]},
        "built_at": built_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "retention_days": request.retention_days,
        "counts": {"rows": rows, "excluded_protected": excluded_protected},
        "encoding": {
            # read by the partner's staff too: Japanese first, the English beside it
            "persons.csv": "UTF-8 (BOM なし)、RFC 4180、改行 CRLF、日付は ISO 8601、1 行目は fields[].label"
            " / UTF-8 (no BOM), RFC 4180, CRLF, ISO 8601 dates; header row = fields[].label",
            "persons.xlsx": "シート 名簿 (1 行目は fields[].label、ID は文字列、日付は日付)、シート 説明"
            " / sheet 名簿 (header row = fields[].label; identifiers as text, dates as dates), sheet 説明",
        },
        "files": files,
    }
    if cp932_lossy_rows is not None:
        doc["cp932_lossy_rows"] = cp932_lossy_rows
    if private_use:
        doc["private_use_characters"] = private_use
    if xlsx_replaced_rows:
        doc["xlsx_replaced_control_characters"] = xlsx_replaced_rows
    if xlsx_truncated_rows:
        doc["xlsx_truncated_values"] = xlsx_truncated_rows  # cut at an Excel cell's 32,767 characters
    if csv_formula_guarded_rows:
        # persons-excel.csv and persons-cp932.csv: these fields start with "'" there, never in persons.csv
        doc["csv_formula_guarded_rows"] = csv_formula_guarded_rows
    return doc
