"""再入力作業一覧: the lost work of a failover as the clerks of each town read it.

One line per row to type again, by town, then 業務, then commit time (JST): CSV (RFC 4180,
UTF-8 with a BOM so Excel opens it), xlsx with every cell typed as text (an 異動 number or a
郵便番号 keeps its leading zeros), and plain Japanese lines for the failover report. When no
WAL survived, the text states the lost interval exactly, JST and ISO 8601.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from backup.walsurvivors import RECYCLED
from dc.clock import jst_text
from dc.errors import N_, BcpError, Message, UsageError, message_of, os_reason
from failover.lostscratch import lost_run, lost_scratch

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from dc.config import Consortium
    from failover.results import SystemResult

HEADER = ("町", "業務", "時刻（JST）", "操作", "トランザクション", "表", "確認項目")


def _when(value: str | None) -> str:
    return jst_text(value, seconds=True) if value else "時刻不明"


def worklist_lines(doc: dict[str, Any]) -> list[list[str]]:
    """The rows of the worklist (``doc``: a :class:`failover.lostwork.LostWork` as JSON)."""
    return [
        [
            r["town"],
            r["business"],
            _when(r.get("committed_at")),
            r["operation"],
            "" if r.get("xid") is None else str(r["xid"]),
            r["table"],
            "、".join(f"{k}={v}" for k, v in r["fields"].items()),
        ]
        for r in doc["rows"]
    ]


#: what makes Excel run a field as a formula (``=HYPERLINK(…)``, ``=cmd|…``): a resident's name or
#: an 異動 note is free text that anyone can have registered (OWASP CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})
#: the C0 controls XML 1.0 cannot hold: in the xlsx they become U+FFFD (the CSV keeps them)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _guarded(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def _private(path: Path) -> IO[bytes]:
    """A new file only its owner reads (the worklist names residents), never written through a link."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")


def write_worklist(doc: dict[str, Any], directory: Path) -> list[Path]:
    """``<system>-再入力.csv`` and ``.xlsx`` (one sheet per town) in ``directory``; what the OS
    refuses (not a directory, no permission, a directory where a file goes) is one line, exit 2."""
    try:
        return _write_worklist(doc, directory)
    except OSError as exc:
        raise UsageError(
            N_("cannot write the worklist in {directory}: {strerror}"),
            directory=directory,
            strerror=os_reason(exc),
        ) from None


def _write_worklist(doc: dict[str, Any], directory: Path) -> list[Path]:
    from openpyxl import Workbook

    directory.mkdir(parents=True, exist_ok=True)
    lines = worklist_lines(doc)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([_guarded(v) for v in line] for line in lines)
    stem = f"{doc['system']}-再入力"
    csv_path = directory / f"{stem}.csv"
    with _private(csv_path) as out:
        out.write(text.getvalue().encode("utf-8-sig"))
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    sheets: dict[str, Any] = {}
    for town in dict.fromkeys(line[0] for line in lines) or [doc.get("tenant_name", "—")]:
        title = _NOT_XML.sub("_", town).translate(_SHEET_FORBIDDEN).strip("'")[:31] or "—"
        sheet = sheets.get(title) or book.create_sheet(title)
        if title not in sheets:
            sheets[title] = sheet
            sheet.append(HEADER)
        for line in (ln for ln in lines if ln[0] == town):
            sheet.append([_NOT_XML.sub("\ufffd", value) for value in line])
            for cell in sheet[sheet.max_row]:
                # text, never a formula, whatever the value starts with; identifiers keep leading zeros
                cell.data_type, cell.number_format = "s", "@"
    xlsx_path = directory / f"{stem}.xlsx"
    with _private(xlsx_path) as out:
        book.save(out)
    return [csv_path, xlsx_path]


def head_lines(doc: dict[str, Any], japanese: Callable[[str], str] = str) -> list[str]:
    """Where the offsite's recovery ended, and each surviving file not used with its reason;
    ``japanese`` puts the core's English reasons and warnings in Japanese (the CLI's catalog)."""
    recovered = doc.get("recovered_to")
    lines = [f"遠隔地のWALで復旧した最終トランザクション: {_when(recovered)}（{recovered or '—'}）"]
    skipped = doc.get("skipped", [])
    recycled = [s for s in skipped if s["reason"].startswith(RECYCLED)]
    lines += [f"使用しなかった残存WAL: {s['path']}（{japanese(s['reason'])}）" for s in skipped if s not in recycled]
    if recycled:
        lines.append(f"PostgreSQL が再利用のために用意しただけの未使用のファイル {len(recycled)} 件は読んでいません。")
    lines += [f"注意: {japanese(w)}" for w in doc.get("warnings", [])]
    if doc.get("missing"):
        lines.append(f"残存WALに欠落があります: {doc['missing']} がなく、それ以降は使用していません。")
    return lines


def tail_lines(doc: dict[str, Any]) -> list[str]:
    """What is lost for certain: the interval no copy of the WAL covers, JST and ISO 8601."""
    declared = doc["declared_at"]
    if doc.get("deferred"):
        return [
            f"再入力作業一覧の作成は後回しにしました（failover run --lost-work later）。"
            f"残存WALから作成するには次を実行してください: {doc['deferred']}",
            f"確認できるまで、{_when(doc.get('recovered_to'))} 〜 {_when(declared)}"
            f"（{doc.get('recovered_to') or '—'} 〜 {declared}）の処理は失われたものとして扱ってください。",
        ]
    if doc.get("survived_lsn") is None:
        recovered = doc.get("recovered_to")
        none = (
            f"残存WAL {doc['unreplayed']} セグメントは PostgreSQL が再生できませんでした（上記の注意）。"
            if doc.get("unreplayed")
            else "残存するWALはありません。"
        )
        return [
            f"{none}失われた期間: {_when(recovered)} 〜 {_when(declared)}"
            f"（{recovered or '—'} 〜 {declared}）。この間の処理はすべて失われました。"
            "入力・異動・収納の再入力が必要です。"
        ]
    survived = doc.get("survived_to")
    return [
        f"残存WALから {len(doc['transactions'])} 件のトランザクション（{_when(survived)} まで）を確認し、"
        f"再入力が必要な処理は {len(doc['rows'])} 件です。",
        f"{_when(survived)} 〜 {_when(declared)}（{survived or '—'} 〜 {declared}）の処理は残存WALにもなく、不明です。",
    ]


def report_lines(doc: dict[str, Any], japanese: Callable[[str], str] = str) -> list[str]:
    """失われた処理 for the failover report: the worklist, or exactly what interval is lost."""
    rows = [f"  {r[0]} {r[1]} {r[2]} {r[3]} {r[6]}" for r in worklist_lines(doc)]
    return head_lines(doc, japanese) + rows + tail_lines(doc)


def lost_worklist(
    config: Consortium,
    config_file: Path,
    system: str,
    state: Engine,
    *,
    run_id: str | None = None,
    surviving: Sequence[str] | None = None,
    site: str | None = None,
    declared_at: datetime | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """:func:`failover.lostwork.lost_work` as a document, its worklist files written to ``out``;
    its scratch clusters recorded under ``run_id`` (a failover's), else under a run of its own."""
    from failover.lostwork import lost_work
    from failover.results import to_document

    with ExitStack() as stack:
        if run_id is None:
            run_id = stack.enter_context(lost_run(state, config.consortium, site, declared_at))
        scratch = stack.enter_context(lost_scratch(state, run_id))
        work = lost_work(config, config_file, system, scratch, surviving=surviving, site=site, declared_at=declared_at)
    doc: dict[str, Any] = to_document(work)
    doc["tenant_name"] = config.tenants[doc["tenant"]].name
    doc["files"] = [str(p) for p in write_worklist(doc, out)] if out is not None else []
    return doc


def lost_command(system: str, site: str | None, declared: datetime) -> str:
    """The command that lists what a failover of ``system`` lost, when the failover deferred it."""
    at = f" --site {site}" if site else ""
    return f"bcpctl failover lost {system}{at} --declared-at {declared.isoformat()} --out <folder>"


def failover_losses(
    config: Consortium,
    config_file: Path | None,
    systems: Sequence[SystemResult],
    declared: datetime,
    site: str | None,
    state: Engine,
    run_id: str,
    *,
    defer: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """What each postgres-wal system that came back lost, for the failover report: the worklist
    where its configuration names surviving WAL, else (or when listing fails) the interval.

    ``defer``: list nothing now (two more base restores per system), only the interval and, in
    ``deferred``, the command that makes the list later.
    """
    from failover.lostwork import LostWork
    from failover.results import to_document

    losses: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for result in systems:
        if result.source_kind != "postgres-wal" or not result.ok:
            continue
        system = config.system(result.system)
        recovered = result.snapshot_time.isoformat() if result.snapshot_time else None
        interval = to_document(
            LostWork(result.system, system.tenant, system.business, recovered, "", declared.isoformat())
        )
        interval["files"] = []
        losses[result.system] = interval
        if not system.source.surviving_wal or config_file is None:
            continue
        if defer:
            interval["deferred"] = lost_command(result.system, site, declared)
            continue
        try:
            losses[result.system] = lost_worklist(
                config, config_file, result.system, state, run_id=run_id, site=site, declared_at=declared
            )
        except BcpError as exc:
            warnings.append(
                Message(
                    N_("{system}: the lost transactions could not be listed ({reason})"),
                    system=result.system,
                    reason=message_of(exc),
                )
            )
        except Exception as exc:  # psycopg and OS errors of a scratch cluster: production is already promoted
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warnings.append(
                Message(
                    N_("{system}: the lost transactions could not be listed ({first})"),
                    system=result.system,
                    first=first,
                )
            )
    return losses, warnings
