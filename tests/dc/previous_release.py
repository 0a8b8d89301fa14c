"""A control database of the release before migrations (7fbf416), created and filled as that release did.

Two ways to get its schema: the raw DDL that release's ``create_all`` emitted (no version table:
what every deployed site has; ``schema_7fbf416_*.sql``, dumped from that commit), or migration
0001. The rows are what that release's code wrote: times of the web tables and the export
requests as ISO 8601 text, the lease's as Unix seconds, an audit chain that verifies, and
requests bound into it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Date, Engine, MetaData, insert, select, text
from sqlalchemy.engine import make_url

from dc import audit, schema
from dc.state import UtcDateTime, metadata
from victim_support.policy import Scope
from victim_support.request import ExportRequest, spec_hash, specification

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
LAYERS = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")
DDL = {"sqlite": HERE / "schema_7fbf416_sqlite.sql", "postgresql": HERE / "schema_7fbf416_postgresql.sql"}

T0 = datetime(2026, 11, 29, 13, 18, 40, 123456, tzinfo=UTC)
#: what the sessions table stores is the SHA-256 of this cookie
COOKIE = "c00kie-of-an-operator-session-0123456789abcdef"

Rows = dict[str, list[dict[str, Any]]]

#: tables of the release that a later migration folded into another: their rows are checked
#: where they went (:func:`expected_rows`)
FOLDED = frozenset({"web_jobs"})


def text_time(when: datetime) -> str:
    """A time as the previous release wrote it into its text columns."""
    return when.astimezone(UTC).isoformat()


def create_as_deployed(url: str, tables: Collection[str] | None = None) -> None:
    """The release's tables from its raw DDL, no version table; only ``tables`` when given (a site
    creates a table on first use, so a site that never used the web has no web tables)."""
    dialect = make_url(url).get_backend_name()
    statements = [s for s in DDL[dialect].read_text().split(";\n") if s.strip()]
    if tables is not None:
        statements = [s for s in statements if _tables_of(s, dialect) <= set(tables)]
    script = ";\n".join(statements) + ";\n"
    if dialect == "sqlite":
        import sqlite3

        with sqlite3.connect(make_url(url).database or "") as conn:
            conn.executescript(script)
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(script.encode())


def _tables_of(statement: str, dialect: str) -> set[str]:
    """The tables a DDL statement creates or alters (sequences count as their table's)."""
    body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
    if dialect == "sqlite":
        return set(re.findall(r"CREATE TABLE (\w+)|CREATE INDEX \w+ ON (\w+)", body)[0]) - {""}
    return {re.sub(r"_id_seq$", "", name) for name in re.findall(r"public\.(\w+)", body)}


def create_by_migration(engine: Engine) -> None:
    schema.upgrade(engine, schema.PREVIOUS_RELEASE)


def _request(request_id: str, created: datetime, status: str, fields: tuple[str, ...]) -> ExportRequest:
    return ExportRequest(
        id=request_id,
        tenant="goka",
        partner="koga",
        disaster_id="2026-kanto-eq",
        disaster_date=date(2026, 11, 28),
        basis="APPI-69-2-3",
        purposes=("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"),
        requested_fields=("name", "address"),
        fields=fields,
        scope=Scope(areas=("大字小手指",), all_areas=False, support_only=False),
        retention_days=30,
        formats=("csv", "pfif"),
        requested_by="koga-yamada",
        created_at=created,
        valid_until=created + timedelta(days=7),
        status=status,
        required_approvals=2,
    )


def _request_row(request: ExportRequest) -> dict[str, Any]:
    """The row as the previous release's ``victim_support.store`` wrote it."""
    return {
        "id": request.id,
        "tenant": request.tenant,
        "partner": request.partner,
        "disaster_id": request.disaster_id,
        "disaster_date": request.disaster_date.isoformat(),
        "basis": request.basis,
        "purposes": json.dumps(list(request.purposes)),
        "requested_fields": json.dumps(list(request.requested_fields), ensure_ascii=False),
        "fields": json.dumps(list(request.fields)),
        "scope": json.dumps(
            {"areas": list(request.scope.areas), "all": request.scope.all_areas, "support_only": False},
            ensure_ascii=False,
        ),
        "retention_days": request.retention_days,
        "formats": json.dumps(list(request.formats)),
        "requested_by": request.requested_by,
        "created_at": text_time(request.created_at),
        "valid_until": text_time(request.valid_until),
        "status": request.status,
        "builds": request.builds,
    }


def rows() -> Rows:
    """Every table of the release with realistic rows (ids explicit, so they compare in order)."""
    t = T0
    fields = ("person_ref", "household_ref", "name", "address")
    pending = _request("exp-20261129-a1b2c3", t, "pending", fields)
    denied = _request("exp-20261129-d4e5f6", t + timedelta(minutes=5, microseconds=-123456), "denied", fields)
    run = "drill-20261129T131840-9f8e7d"
    return {
        "backup_runs": [
            dict(id=1, system="goka-juki", tenant="goka", repository="file:///srv/bcp/repo",
                 source="sqlite:///srv/goka/juki.db", snapshot_id="ab" * 32, started_at=t,
                 finished_at=t + timedelta(seconds=51), ok=True, bytes_in=1 << 30, bytes_added=12_345_678,
                 seconds=50.75, error=None),
            dict(id=2, system="naka-juki", tenant="naka", repository="file:///srv/bcp/repo",
                 source="postgresql://bcp@pg.primary.invalid/naka_juki", snapshot_id=None, started_at=t,
                 finished_at=None, ok=False, bytes_in=0, bytes_added=0, seconds=0.0,
                 error="pg_dump: 接続できません (connection refused)"),
        ],
        "drill_runs": [
            dict(id=run, kind="drill", mode="isolated", status="passed", consortium="ibaraki-kikan",
                 site="primary", target_site="offsite", declared_at=t, deadline=t + timedelta(hours=4),
                 finished_at=t + timedelta(minutes=12), host="ctl01", pid=4242, pid_start="123456789",
                 operator="bcpctl", approver=None, error=None, document=json.dumps({"systems": 2})),
        ],
        "drill_systems": [
            dict(id=1, run_id=run, system="goka-juki", tenant="goka", status="passed", snapshot_id="cd" * 32,
                 snapshot_time=t - timedelta(minutes=7), rto_seconds=612.5, rpo_seconds=420.0, rto_target=14400,
                 rpo_target=900, finished_at=t + timedelta(minutes=11)),
        ],
        "drill_resources": [
            dict(id=1, run_id=run, kind="pg_database", name="bcp_drill_goka_juki", location="127.0.0.1:5432",
                 state="removed", created_at=t, removed_at=t + timedelta(minutes=12), detail=None),
        ],
        "health_observations": [
            dict(kind="host", subject="hv01", site="primary", tenant=None, probe="ssh", ok=True, value=None,
                 value2=None, detail="ok", checked_at=t),
            dict(kind="filesystem", subject="primary", site="primary", tenant=None, probe="statvfs", ok=True,
                 value=5.0e11, value2=2.0e12, detail=None, checked_at=t),
        ],
        "host_maintenance": [dict(host="hv02", reason="ファームウェア更新", since=t, operator="sato")],
        "maintenance_events": [
            dict(id=1, host="hv02", on=True, reason="ファームウェア更新", at=t, operator="sato"),
        ],
        "playbook_runs": [
            dict(run_id="health-20261129T131840-1a2b", playbook="health", limit_pattern="primary",
                 check_mode=False, extravar_names="[]", status="successful", rc=0, ok=True, started_at=t,
                 finished_at=t + timedelta(seconds=9), seconds=9.25, error=None),
        ],
        "playbook_hosts": [
            dict(id=1, run_id="health-20261129T131840-1a2b", host="hv01", status="ok", ok=5, changed=0, failed=0,
                 unreachable=0, skipped=1, rescued=0, ignored=0, message=None, data=json.dumps({"load": 0.3})),
        ],
        "replication_pins": [
            dict(repository="9" * 64, public_key="k" * 64, sequence=1_764_422_320_123, manifest_sha256="e" * 64,
                 updated_at=t),
        ],
        "replication_pending_deletes": [
            dict(target="s3://bcp-offsite/ibaraki", key="data/ab/" + "ab" * 32, first_missing_at=t),
        ],
        "replication_locks": [
            dict(target="s3://bcp-offsite/ibaraki", key="data/cd/" + "cd" * 32, retain_until=t + timedelta(days=35)),
        ],
        "replication_lag": [
            dict(target="s3://bcp-offsite/ibaraki", system="goka-juki", source="file:///srv/bcp/repo",
                 source_newest=t, target_newest=t - timedelta(minutes=4), lag_seconds=240.0, measured_at=t),
        ],
        "replication_runs": [
            dict(id=1, source="file:///srv/bcp/repo", target="s3://bcp-offsite/ibaraki", started_at=t,
                 finished_at=t + timedelta(seconds=30), ok=True, objects_copied=17, bytes_sent=(1 << 33) + 5,
                 seconds=30.5, manifest_sequence=1_764_422_320_123, error=None),
        ],
        "repository_checks": [
            dict(id=1, site="primary", started_at=t, finished_at=t + timedelta(minutes=3), ok=True, read_data=True,
                 subset_n=3, subset_m=7, snapshots=40, packs=1200, packs_read=171, bytes_read=(1 << 31) - 1, problems=0,
                 detail=None),
        ],
        "resource_usage": [
            dict(id=1, tenant="goka", kind="drill_seconds", amount=612.5, at=t, ref=run),
        ],
        "scheduler_job_runs": [
            dict(run_id="0f" * 16 + "abcd", job_id="backup:goka-juki", kind="backup", holder="ctl01:4242:1a2b3c4d",
                 started_at=t, finished_at=t + timedelta(seconds=51), status="ok", error=None),
        ],
        "scheduler_job_claims": [
            dict(job_id="replicate", run_id="1e" * 16 + "abcd", holder="ctl01:4242:1a2b3c4d", claimed_at=t,
                 heartbeat_at=t + timedelta(seconds=3)),
        ],
        "scheduler_job_stats": [
            dict(job_id="backup:goka-juki", runs=96, failures=1, missed=0, consecutive_failures=0,
                 last_success_at=t, last_finished_at=t, last_seconds=50.75),
        ],
        # released on a clean stop (expires_at 0): no scheduler holds it
        "scheduler_lease": [
            dict(name="scheduler", holder="ctl01:4242:1a2b3c4d", acquired_at=1_764_422_320.125, expires_at=0.0),
        ],
        "scheduler_terms": [
            dict(id=1, holder="ctl01:4242:1a2b3c4d", started_at=t - timedelta(days=3), ended_at=t,
                 end_reason="stopped"),
        ],
        "web_accounts": [
            dict(name="sato", roles=json.dumps(["operator"]), password_hash="$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA",
                 created_at=text_time(t - timedelta(days=30)), disabled=False),
            dict(name="proxy-auditor", roles=json.dumps(["auditor"]), password_hash=None,
                 created_at=text_time(t - timedelta(days=29)), disabled=True),
        ],
        "web_partner_tokens": [
            dict(id="0a1b2c3d", partner="koga", digest="f" * 64, label="古河市 防災課", issued_by="sato",
                 issued_at=text_time(t), expires_at=text_time(t + timedelta(days=14)), revoked_at=None),
            dict(id="4e5f6a7b", partner="koga", digest="a" * 64, label="", issued_by="sato",
                 issued_at=text_time(t - timedelta(days=20)), expires_at=text_time(t - timedelta(days=6)),
                 revoked_at=text_time(t - timedelta(days=10))),
        ],
        "web_request_nonces": [
            dict(partner="koga", nonce="n0nce-0123456789abcdef", seen_at=text_time(t)),
        ],
        "web_sessions": [
            dict(digest=hashlib.sha256(COOKIE.encode()).hexdigest(), kind="operator", subject="sato",
                 csrf="csrf-token-0123456789", created_at=text_time(t),
                 expires_at=text_time(t + timedelta(hours=8))),
        ],
        "web_jobs": [
            dict(id="job-20261129T131840-0a0b0c", kind="drill", mode="readiness", tenant="goka",
                 requested_by="sato", requested_at=text_time(t), status="passed", run_id=run,
                 finished_at=text_time(t + timedelta(minutes=12)), error=None, host="ctl01", pid=4242),
            dict(id="job-20261129T140000-0d0e0f", kind="drill", mode="isolated", tenant=None,
                 requested_by="sato", requested_at=text_time(t + timedelta(minutes=41)), status="running",
                 run_id=None, finished_at=None, error=None, host="ctl01", pid=4343),
        ],
        # The times as text, in the forms they can hold: UTC with microseconds (what the release
        # wrote), without a fraction, and with another offset (JST).
        "web_deliveries": [
            dict(request_id=pending.id, partner="koga", bundle="/var/lib/bcpctl/bundles/x/bundle-1",
                 payload_sha256="1" * 64, built_at=text_time(t), expires_at="2026-12-29T13:18:40+00:00",
                 downloads=2, last_download_at=text_time(t + timedelta(hours=1)), deleted_at=None, deleted_by=None),
            dict(request_id=denied.id, partner="koga", bundle="/var/lib/bcpctl/bundles/y/bundle-2",
                 payload_sha256="2" * 64, built_at="2026-11-30T09:15:00.5+09:00",
                 expires_at="2026-12-07T00:00:00+09:00", downloads=1, last_download_at="2026-11-30T10:00:00+09:00",
                 deleted_at=text_time(t + timedelta(days=2)), deleted_by="古河市 防災課 鈴木"),
        ],
        "export_requests": [_request_row(pending), _request_row(denied)],
        "export_decisions": [
            dict(id=1, request_id=denied.id, approver="goka-suzuki", role="tenant", decision="deny",
                 at=text_time(t + timedelta(minutes=30)), reason="目的外の項目を含む"),
        ],
    }  # fmt: skip


def fill(engine: Engine) -> Rows:
    """Insert :func:`rows` with the release's own table declarations and chain its audit entries."""
    release = schema.previous_release()
    filled = rows()
    with engine.begin() as conn:
        for name, table_rows in filled.items():
            conn.execute(insert(release.tables[name]), table_rows)
            if conn.dialect.name == "postgresql" and "id" in table_rows[0] and isinstance(table_rows[0]["id"], int):
                # ids are given so that rows compare in order; the release's inserts advanced the sequence
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {len(table_rows)})"))
    requests = {row["id"]: row for row in filled["export_requests"]}

    def chain(conn: Any) -> None:
        for request_id, row in requests.items():
            request = _request(
                request_id, datetime.fromisoformat(row["created_at"]), row["status"], tuple(json.loads(row["fields"]))
            )
            spec = specification(request)
            audit.append(conn, actor="koga-yamada", action="request.created", subject=request_id,
                         details={"spec": spec, "spec_hash": spec_hash(spec)})  # fmt: skip
        denied = filled["export_decisions"][0]
        audit.append(conn, actor="goka-suzuki", action="request.denied", subject=denied["request_id"],
                     details={"status": "denied", "reason": denied["reason"]})  # fmt: skip
        audit.append(conn, actor="sato", action="token.issued", subject="koga", details={"token": "0a1b2c3d"})
        downloaded = filled["web_deliveries"][0]["request_id"]
        audit.append(conn, actor="partner:koga", action="bundle.downloaded", subject=downloaded,
                     details={"bundle": "bundle-1", "payload_sha256": "1" * 64, "via": "api"})  # fmt: skip
        for job in filled["web_jobs"]:  # what the release's dashboard audited for each drill it started
            audit.append(conn, actor=job["requested_by"], action="drill.requested", subject=job["id"],
                         details={"mode": job["mode"], "tenant": job["tenant"]})  # fmt: skip
            if job["status"] != "running":
                finished = {"run": job["run_id"], "status": job["status"], "error": job["error"]}
                audit.append(conn, actor=job["requested_by"], action="drill.finished", subject=job["id"],
                             details=finished)  # fmt: skip

    audit.audited(engine, chain)
    with engine.connect() as conn:
        filled["audit_log"] = [dict(r._mapping) for r in conn.execute(select(release.tables["audit_log"]))]
    return filled


def today() -> MetaData:
    """Today's metadata, complete: every module that declares a control-database table, imported.

    Found by reading the sources (a ``Table(`` or an ``Index(``), so a table or index declared
    in a new module is compared too; the migrations themselves are not modules to import.
    """
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if re.search(r"\b(Table|Index)\(", path.read_text("utf-8")):
                importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return metadata


def upgraded(column: Any, value: Any) -> Any:
    """What a value of the previous release reads as in today's schema: the same instant, day, number or text."""
    if value is None:
        return None
    if isinstance(column.type, UtcDateTime):
        if isinstance(value, str):
            return datetime.fromisoformat(value).astimezone(UTC)
        if isinstance(value, float):
            return datetime.fromtimestamp(value, UTC)
        return value.astimezone(UTC)
    if isinstance(column.type, Date) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def expected_rows(filled: Rows) -> Rows:
    """The rows today's tables hold after the upgrade: ``filled``, with the folded tables' rows where they went.

    A drill job of the web whose drill ran gave its run its tenant and, as the operator, the
    account that asked (migration 0005); a job without a run lives on in the audit chain only.
    A request of the previous release stated no 台帳 waiver and has no estimate (migration 0009).
    """
    expected = {name: [dict(row) for row in rows] for name, rows in filled.items() if name not in FOLDED}
    runs = {row["id"]: row for row in expected["drill_runs"]}
    for job in filled["web_jobs"]:
        if job["run_id"] in runs:
            runs[job["run_id"]].update(tenant=job["tenant"], operator=job["requested_by"])
    for request in expected.get("export_requests", []):
        request.setdefault("ledger_waiver", "")  # migration 0009: no 台帳 waiver was stated (estimate stays NULL)
    return expected


def assert_preserved(engine: Engine, filled: Rows) -> None:
    """Every row of ``filled`` reads back from today's tables with the same values, and nothing more."""
    for name, table_rows in expected_rows(filled).items():
        table = today().tables[name]
        keys = list(table.primary_key.columns)
        with engine.connect() as conn:
            got = [dict(r._mapping) for r in conn.execute(select(table).order_by(*keys))]
        wanted = [{c.name: upgraded(c, row.get(c.name)) for c in table.columns} for row in table_rows]
        wanted.sort(key=lambda row: tuple(row[k.name] for k in keys))
        assert got == wanted, name
