"""Export requests and their approvals in the control database, each change audited atomically.

Every state change and its audit entry commit in one transaction, so the log can never miss a
decision that took effect (or record one that did not). Timestamps are stored as ISO 8601 text
in UTC, identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)

from dc.config import Consortium
from dc.errors import UsageError
from dc.state import metadata
from failover.calendar import JST
from victim_support import approval as rules
from victim_support.audit import append, audit_log, audited, ensure
from victim_support.errors import PolicyRejected, RequestStateError
from victim_support.policy import RequestSpec, Scope, evaluate
from victim_support.settings import ExportSettings

export_requests = Table(
    "export_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("partner", String(64), nullable=False),
    Column("disaster_id", Text, nullable=False),
    Column("disaster_date", String(10), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("purposes", Text, nullable=False),
    Column("requested_fields", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("formats", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("valid_until", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("builds", Integer, nullable=False, default=0),
)

export_decisions = Table(
    "export_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False, index=True),
    Column("approver", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("at", String(40), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    UniqueConstraint("request_id", "approver"),
)


@dataclass(frozen=True)
class NewRequest:
    """What a partner asks for, as parsed from the command line."""

    partner: str
    tenant: str
    disaster_id: str
    disaster_date: date
    basis: str
    purposes: tuple[str, ...]
    fields: tuple[str, ...]
    scope: Scope
    requested_by: str
    retention_days: int | None = None
    formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportRequest:
    id: str
    tenant: str
    partner: str
    disaster_id: str
    disaster_date: date
    basis: str
    purposes: tuple[str, ...]
    requested_fields: tuple[str, ...]
    fields: tuple[str, ...]
    scope: Scope
    retention_days: int
    formats: tuple[str, ...]
    requested_by: str
    created_at: datetime
    valid_until: datetime
    #: effective status at load time (pending, approved, denied, expired).
    status: str
    required_approvals: int
    approvals: tuple[rules.Approval, ...] = ()
    denial: str | None = None
    builds: int = 0


def _tables(engine: Engine) -> None:
    ensure(engine, export_requests, export_decisions, audit_log)


def create_request(
    engine: Engine, config: Consortium, settings: ExportSettings, new: NewRequest, now: datetime
) -> ExportRequest:
    """Check a request against the law tables and store it; a rejection is audited, then raised."""
    if new.partner not in config.partners:
        raise UsageError(f"unknown partner '{new.partner}' (known: {', '.join(config.partners) or 'none'})")
    if new.tenant not in config.tenants:
        raise UsageError(f"unknown tenant '{new.tenant}' (known: {', '.join(config.tenants)})")
    if not new.requested_by.strip():
        raise UsageError("--requested-by must name the requesting officer")
    retention = new.retention_days if new.retention_days is not None else settings.retention_days
    spec = RequestSpec(
        partner_lg_code=config.partners[new.partner].lg_code,
        tenant_lg_code=config.tenants[new.tenant].lg_code,
        disaster_id=new.disaster_id,
        disaster_date=new.disaster_date,
        basis=new.basis,
        purposes=new.purposes,
        fields=new.fields,
        scope=new.scope,
        retention_days=retention,
        formats=new.formats,
    )
    # The municipalities' calendar day: a disaster at 06:00 JST is "today" though UTC says yesterday.
    today = now.astimezone(JST).date()
    decision = evaluate(spec, today=today, max_retention_days=settings.max_retention_days)
    _tables(engine)
    subject = f"{new.tenant}->{new.partner}"
    summary = {
        "basis": new.basis,
        "purposes": list(new.purposes),
        "fields": list(new.fields),
        "disaster": new.disaster_id,
    }
    if not decision.allowed:
        audited(
            engine,
            lambda conn: append(
                conn,
                actor=new.requested_by,
                action="request.rejected",
                subject=subject,
                details={**summary, "reasons": list(decision.reasons)},
            ),
        )
        raise PolicyRejected(decision.message())
    request = ExportRequest(
        id=f"exp-{now:%Y%m%d}-{secrets.token_hex(3)}",
        tenant=new.tenant,
        partner=new.partner,
        disaster_id=new.disaster_id,
        disaster_date=new.disaster_date,
        basis=new.basis,
        purposes=new.purposes,
        requested_fields=new.fields,
        fields=decision.fields,
        scope=new.scope,
        retention_days=retention,
        formats=tuple(sorted(set(new.formats))),
        requested_by=new.requested_by,
        created_at=now,
        valid_until=now + timedelta(seconds=settings.request_valid_for),
        status=rules.PENDING,
        required_approvals=settings.required_approvals(new.basis),
    )

    def work(conn: Connection) -> None:
        conn.execute(insert(export_requests).values(**_row(request)))
        append(
            conn,
            actor=new.requested_by,
            action="request.created",
            subject=request.id,
            details={**summary, "tenant": new.tenant, "partner": new.partner, "exported_fields": list(request.fields)},
        )

    audited(engine, work)
    return request


def _row(request: ExportRequest) -> dict[str, object]:
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
            {
                "areas": list(request.scope.areas),
                "all": request.scope.all_areas,
                "support_only": request.scope.support_only,
            },
            ensure_ascii=False,
        ),
        "retention_days": request.retention_days,
        "formats": json.dumps(list(request.formats)),
        "requested_by": request.requested_by,
        "created_at": request.created_at.astimezone(UTC).isoformat(),
        "valid_until": request.valid_until.astimezone(UTC).isoformat(),
        "status": request.status,
        "builds": request.builds,
    }


def _load(conn: Connection, row: object, settings: ExportSettings, now: datetime) -> ExportRequest:
    r = row._mapping  # type: ignore[attr-defined]
    decisions = conn.execute(
        select(export_decisions).where(export_decisions.c.request_id == r["id"]).order_by(export_decisions.c.id)
    ).all()
    approvals = tuple(
        rules.Approval(d.approver, d.role, datetime.fromisoformat(d.at), d.reason)
        for d in decisions
        if d.decision == "approve"
    )
    denial = next((f"{d.approver}: {d.reason}" for d in decisions if d.decision == "deny"), None)
    scope = json.loads(r["scope"])
    valid_until = datetime.fromisoformat(r["valid_until"])
    return ExportRequest(
        id=r["id"],
        tenant=r["tenant"],
        partner=r["partner"],
        disaster_id=r["disaster_id"],
        disaster_date=date.fromisoformat(r["disaster_date"]),
        basis=r["basis"],
        purposes=tuple(json.loads(r["purposes"])),
        requested_fields=tuple(json.loads(r["requested_fields"])),
        fields=tuple(json.loads(r["fields"])),
        scope=Scope(tuple(scope["areas"]), bool(scope["all"]), bool(scope["support_only"])),
        retention_days=r["retention_days"],
        formats=tuple(json.loads(r["formats"])),
        requested_by=r["requested_by"],
        created_at=datetime.fromisoformat(r["created_at"]),
        valid_until=valid_until,
        status=rules.effective_status(r["status"], valid_until, now),
        required_approvals=settings.required_approvals(r["basis"]),
        approvals=approvals,
        denial=denial,
        builds=r["builds"],
    )


def get_request(engine: Engine, request_id: str, settings: ExportSettings, now: datetime) -> ExportRequest:
    _tables(engine)
    with engine.connect() as conn:
        return _get(conn, request_id, settings, now)


def _get(conn: Connection, request_id: str, settings: ExportSettings, now: datetime) -> ExportRequest:
    row = conn.execute(select(export_requests).where(export_requests.c.id == request_id)).first()
    if row is None:
        raise UsageError(f"no export request '{request_id}' (see 'bcpctl export list')")
    return _load(conn, row, settings, now)


def list_requests(
    engine: Engine, settings: ExportSettings, now: datetime, *, tenant: str | None = None, status: str | None = None
) -> list[ExportRequest]:
    _tables(engine)
    query = select(export_requests).order_by(export_requests.c.created_at)
    if tenant:
        query = query.where(export_requests.c.tenant == tenant)
    with engine.connect() as conn:
        found = [_load(conn, row, settings, now) for row in conn.execute(query).all()]
    return [r for r in found if status is None or r.status == status]


def decide(
    engine: Engine,
    settings: ExportSettings,
    request_id: str,
    *,
    approver: str,
    approve: bool,
    reason: str,
    now: datetime,
) -> ExportRequest:
    """Record one approval or a denial; the request is approved when enough distinct people approved."""
    _tables(engine)
    if not approve and not reason.strip():
        raise UsageError("a denial needs --reason")

    def work(conn: Connection) -> ExportRequest:
        request = _get(conn, request_id, settings, now)
        role = rules.check_decision(
            status=request.status,
            tenant_id=request.tenant,
            approvals=list(request.approvals),
            approver=approver,
            requested_by=request.requested_by,
            reason=reason,
            settings=settings,
        )
        at = now.astimezone(UTC).isoformat()
        conn.execute(
            insert(export_decisions).values(
                request_id=request_id,
                approver=approver,
                role=role,
                decision="approve" if approve else "deny",
                at=at,
                reason=reason,
            )
        )
        approvals = (*request.approvals, rules.Approval(approver, role, now, reason)) if approve else request.approvals
        status = rules.DENIED if not approve else request.status
        if approve and rules.quorum_reached(list(approvals), request.required_approvals):
            status = rules.APPROVED
        if status != request.status:
            conn.execute(update(export_requests).where(export_requests.c.id == request_id).values(status=status))
        append(
            conn,
            actor=approver,
            action="request.approved" if approve else "request.denied",
            subject=request_id,
            details={
                "role": role,
                "reason": reason,
                "approvals": len(approvals),
                "required": request.required_approvals,
                "status": status,
            },
        )
        return replace(request, approvals=approvals, status=status, denial=None if approve else f"{approver}: {reason}")

    return audited(engine, work)


def require_buildable(request: ExportRequest) -> None:
    if request.status != rules.APPROVED:
        have = ""
        if request.status == rules.PENDING:
            have = f" ({len(request.approvals)} of {request.required_approvals} approvals)"
        raise RequestStateError(f"request {request.id} is {request.status}{have}; only approved requests can be built")


def count_build(conn: Connection, request_id: str) -> None:
    """Count a build, provided the request is still approved (it may have been denied meanwhile)."""
    done = conn.execute(
        update(export_requests)
        .where(export_requests.c.id == request_id, export_requests.c.status == rules.APPROVED)
        .values(builds=export_requests.c.builds + 1)
    )
    if done.rowcount != 1:
        raise RequestStateError(f"request {request_id} is no longer approved; the bundle was not kept")
