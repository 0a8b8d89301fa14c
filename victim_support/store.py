"""Export requests in the control database, each change audited atomically.

Every state change and its audit entry commit in one transaction, so the log can never miss a
decision that took effect (or record one that did not). The rows are what lists and pages show; what a
build may export is decided from the audit chain (:mod:`victim_support.binding`), since
whoever can write this database can edit a row. Decisions are in :mod:`victim_support.decisions`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)

from dc.clock import jst_day
from dc.config import Consortium
from dc.errors import N_, Message, UsageError
from dc.osuser import os_user
from dc.state import StoredTimeInvalid, UtcDateTime, metadata
from victim_support import approval as rules
from victim_support.audit import append, audited
from victim_support.enrolment import with_enrolled
from victim_support.errors import PolicyRejected, RequestStateError, RequestTampered
from victim_support.policy import Decision, NewRequest, Scope, evaluate
from victim_support.request import ExportRequest, spec_hash, specification
from victim_support.settings import ExportSettings

__all__ = [
    "ExportRequest",
    "NewRequest",
    "count_build",
    "create_request",
    "export_decisions",
    "export_requests",
    "get_request",
    "judge",
    "list_requests",
    "read_request",
]

export_requests = Table(
    "export_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("partner", String(64), nullable=False),
    Column("disaster_id", Text, nullable=False),
    Column("disaster_date", Date, nullable=False),
    Column("basis", String(32), nullable=False),
    Column("purposes", Text, nullable=False),
    Column("requested_fields", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("formats", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("builds", Integer, nullable=False, default=0),
    #: why the request needs no 被災者台帳 entry of its disaster, as the requester stated it (signed with the spec)
    Column("ledger_waiver", Text, nullable=False, server_default=""),
    #: what the check against the replica found at filing (JSON; ``NULL``: filed unchecked, never approvable)
    Column("estimate", Text, nullable=True),
)

export_decisions = Table(
    "export_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False, index=True),
    Column("approver", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    UniqueConstraint("request_id", "approver"),
)


def prepare(config: Consortium, settings: ExportSettings, new: NewRequest) -> NewRequest:
    """Refuse a request naming nobody known; fill in the default retention."""
    if new.partner not in config.partners:
        raise UsageError(
            N_("unknown partner '{partner}' (known: {partners})"),
            partner=new.partner,
            partners=", ".join(config.partners) or Message(N_("none")),
        )
    if new.tenant not in config.tenants:
        raise UsageError(
            N_("unknown tenant '{tenant}' (known: {tenants})"), tenant=new.tenant, tenants=", ".join(config.tenants)
        )
    if not new.requested_by.strip():
        raise UsageError(N_("--requested-by must name the requesting officer"))
    retention = new.retention_days if new.retention_days is not None else settings.retention_days
    return replace(new, retention_days=retention)


def record_rejection(engine: Engine, new: NewRequest, reasons: tuple[str, ...]) -> None:
    """Audit a refused filing with every reason (nothing else is stored)."""
    details = {
        "basis": new.basis,
        "purposes": list(new.purposes),
        "fields": list(new.fields),
        "disaster": new.disaster_id,
        "reasons": list(reasons),
        "filed_by": new.filed_by or f"os:{os_user()}",
    }
    subject = f"{new.tenant}->{new.partner}"
    audited(
        engine,
        lambda conn: append(conn, actor=new.requested_by, action="request.rejected", subject=subject, details=details),
    )


def create_request(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    new: NewRequest,
    now: datetime,
    *,
    estimate: dict[str, Any] | None = None,
) -> ExportRequest:
    """Check a request against the law tables and store it; a rejection is audited, then raised.

    ``estimate`` is what the check against the replica found
    (:func:`victim_support.prefiling.file_request`); a request stored without one can be
    listed but never approved.
    """
    config = with_enrolled(config, engine)
    new = prepare(config, settings, new)
    retention = new.retention_days if new.retention_days is not None else settings.retention_days
    decision = judge(config, settings, new, now)
    filed_by = new.filed_by or f"os:{os_user()}"
    if not decision.allowed:
        record_rejection(engine, new, decision.reasons)
        raise PolicyRejected(decision.message(), decision.reasons)
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
        ledger_waiver=new.ledger_waiver.strip(),
        estimate=estimate,
    )

    spec_doc = specification(request)

    def work(conn: Connection) -> None:
        conn.execute(insert(export_requests).values(**_row(request)))
        # The whole specification and its hash: approvals sign the hash, builds compare the row to it.
        append(
            conn,
            actor=new.requested_by,
            action="request.created",
            subject=request.id,
            details={
                "spec": spec_doc,
                "spec_hash": spec_hash(spec_doc),
                "filed_by": filed_by,
                **({"estimate": estimate} if estimate is not None else {}),
            },
        )

    audited(engine, work)
    return request


def judge(config: Consortium, settings: ExportSettings, new: NewRequest, now: datetime) -> Decision:
    """The law tables' decision on ``new`` for this consortium, on the municipalities' calendar day.

    A disaster at 06:00 JST is "today" though UTC says yesterday, so the day is JST's, for the
    filing and for every later check alike.
    """
    return evaluate(
        new,
        partner_lg_code=config.partners[new.partner].lg_code,
        tenant_lg_code=config.tenants[new.tenant].lg_code,
        today=jst_day(now),
        max_retention_days=settings.max_retention_days,
    )


def _row(request: ExportRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "tenant": request.tenant,
        "partner": request.partner,
        "disaster_id": request.disaster_id,
        "disaster_date": request.disaster_date,
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
        "created_at": request.created_at,
        "valid_until": request.valid_until,
        "status": request.status,
        "builds": request.builds,
        "ledger_waiver": request.ledger_waiver,
        "estimate": None if request.estimate is None else json.dumps(request.estimate, ensure_ascii=False),
    }


def _load(conn: Connection, row: Row[Any], settings: ExportSettings, now: datetime) -> ExportRequest:
    r = row._mapping
    try:
        return _parse(conn, r, settings, now)
    except (ValueError, KeyError, TypeError) as exc:  # a row edited by hand into nonsense
        raise RequestTampered(
            N_("request {r}: its row in the control database is malformed ({exc})"), r=r["id"], exc=exc
        ) from None


def _parse(conn: Connection, r: Any, settings: ExportSettings, now: datetime) -> ExportRequest:
    decisions = conn.execute(
        select(export_decisions).where(export_decisions.c.request_id == r["id"]).order_by(export_decisions.c.id)
    ).all()
    approvals = tuple(rules.Approval(d.approver, d.role, d.at, d.reason) for d in decisions if d.decision == "approve")
    denial = next((f"{d.approver}: {d.reason}" for d in decisions if d.decision == "deny"), None)
    scope = json.loads(r["scope"])
    valid_until = _instant(r["valid_until"])
    return ExportRequest(
        id=r["id"],
        tenant=r["tenant"],
        partner=r["partner"],
        disaster_id=r["disaster_id"],
        disaster_date=_day(r["disaster_date"]),
        basis=r["basis"],
        purposes=tuple(json.loads(r["purposes"])),
        requested_fields=tuple(json.loads(r["requested_fields"])),
        fields=tuple(json.loads(r["fields"])),
        scope=Scope(tuple(scope["areas"]), bool(scope["all"]), bool(scope["support_only"])),
        retention_days=r["retention_days"],
        formats=tuple(json.loads(r["formats"])),
        requested_by=r["requested_by"],
        created_at=_instant(r["created_at"]),
        valid_until=valid_until,
        status=rules.effective_status(r["status"], valid_until, now),
        required_approvals=settings.required_approvals(r["basis"]),
        approvals=approvals,
        denial=denial,
        builds=r["builds"],
        stored_status=r["status"],
        ledger_waiver=r["ledger_waiver"] or "",
        estimate=None if r["estimate"] is None else json.loads(r["estimate"]),
    )


def _instant(value: object) -> datetime:
    if not isinstance(value, datetime):  # SQL access can store any text in a SQLite column
        raise TypeError(f"not a time: {value!r}")
    return value


def _day(value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"not a date: {value!r}")
    return value


def get_request(engine: Engine, request_id: str, settings: ExportSettings, now: datetime) -> ExportRequest:
    with engine.connect() as conn:
        return read_request(conn, request_id, settings, now)


def read_request(conn: Connection, request_id: str, settings: ExportSettings, now: datetime) -> ExportRequest:
    try:
        row = conn.execute(select(export_requests).where(export_requests.c.id == request_id)).first()
    except (ValueError, TypeError, StoredTimeInvalid) as exc:  # SQLite: text in a DATETIME or DATE column
        raise RequestTampered(
            N_("request {request_id}: its row in the control database is malformed ({exc})"),
            request_id=request_id,
            exc=exc,
        ) from None
    if row is None:
        raise UsageError(N_("no export request '{request_id}' (see 'bcpctl export list')"), request_id=request_id)
    return _load(conn, row, settings, now)


def list_requests(
    engine: Engine, settings: ExportSettings, now: datetime, *, tenant: str | None = None, status: str | None = None
) -> list[ExportRequest]:
    query = select(export_requests.c.id).order_by(export_requests.c.created_at)
    if tenant:
        query = query.where(export_requests.c.tenant == tenant)
    with engine.connect() as conn:
        found = [read_request(conn, request_id, settings, now) for request_id in conn.execute(query).scalars()]
    return [r for r in found if status is None or r.status == status]


def count_build(conn: Connection, request_id: str) -> None:
    """Count a build, provided the request is still approved (it may have been denied meanwhile)."""
    done = conn.execute(
        update(export_requests)
        .where(export_requests.c.id == request_id, export_requests.c.status == rules.APPROVED)
        .values(builds=export_requests.c.builds + 1)
    )
    if done.rowcount != 1:
        raise RequestStateError(
            N_("request {request_id} is no longer approved; the bundle was not kept"), request_id=request_id
        )
