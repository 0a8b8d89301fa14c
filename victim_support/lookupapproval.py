"""A lookup that waits for one approver of the home town, for partners whose rule says so.

``exports.lookups.approval.<partner>: approval`` puts each lookup of that partner behind one
approver of the person's home town (``exports.tenants.<tenant>.approvers``). The first call
files it: the lookup counts against the per-hour limits and is answered with a one-time code
(``<lookup id>.<nonce>``); the approver signs the lookup with their own secret exactly as an
export approval is signed (:func:`dc.approvers.prove`, into the audit chain); the partner then
asks the same question again with the code, and is answered once.

What is approved is bound, not described: the control database keeps an HMAC of the question
(names, date of birth, 町字, official) under the nonce that only the code carries, so neither
the database nor its offsite copy holds the name asked for or anything a dictionary of names
and birthdays could be run against, and a code approved for one person answers no other.
The approver sees who asks, for whom (the town), in which disaster, and approves that one
lookup; the name stays with the shelter official who has the person in front of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, Engine, String, Table, Text, insert, select, update

from dc import approvers as credentials
from dc.audit import audit_log
from dc.clock import jst_text
from dc.config import Consortium
from dc.errors import N_, UsageError
from dc.state import UtcDateTime, metadata
from victim_support import approval as rules
from victim_support.audit import append, audited
from victim_support.errors import PolicyRejected
from victim_support.lookuprules import LookupQuery
from victim_support.namematch import name_key
from victim_support.settings import ExportSettings

WAITING = "lookup.waiting"
APPROVED = "lookup.approved"
APPROVE = "lookup.approve"
REFUSED_CODE = "this approval code is unknown, used, expired, not approved, or for another question"

lookup_approvals = Table(
    "lookup_approvals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("partner", String(64), nullable=False),
    Column("official", Text, nullable=False),
    Column("disaster", Text, nullable=False),
    #: HMAC-SHA256 of the question under the code's nonce (never the question itself)
    Column("digest", String(64), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("approved_by", Text, nullable=True),
    Column("approved_at", UtcDateTime, nullable=True),
    Column("used_at", UtcDateTime, nullable=True),
)


def question_digest(nonce: str, query: LookupQuery) -> str:
    """The question as matching normalises it (width, spaces, 髙/高, hiragana/katakana are one question;
    the name in kanji and the name in kana are two)."""
    body = json.dumps(
        [query.partner, query.tenant, query.disaster_id, name_key(query.family), name_key(query.given),
         query.birth_date.isoformat(), name_key(query.machiaza) if query.machiaza else "", query.official.strip()],
        ensure_ascii=False,
    )  # fmt: skip
    return hmac.new(nonce.encode(), body.encode(), hashlib.sha256).hexdigest()


def file_waiting(conn: Connection, lookup_id: str, query: LookupQuery, now: datetime, valid: float) -> tuple[str, int]:
    """In the lookup's transaction: record the lookup as waiting; the one-time code and the audit entry."""
    nonce = secrets.token_urlsafe(18)
    until = now + timedelta(seconds=valid)
    conn.execute(
        insert(lookup_approvals).values(
            id=lookup_id, tenant=query.tenant, partner=query.partner, official=query.official,
            disaster=query.disaster_id, digest=question_digest(nonce, query), requested_at=now, valid_until=until,
        )
    )  # fmt: skip
    entry = append(
        conn,
        actor=query.official,
        action=WAITING,
        subject=f"{query.tenant}->{query.partner}",
        details={"lookup": lookup_id, "disaster": query.disaster_id, "valid_until": until.isoformat()},
    )
    return f"{lookup_id}.{nonce}", entry.seq


def approve_lookup(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    lookup_id: str,
    *,
    approver: str,
    secret: str | None,
    now: datetime,
) -> dict[str, object]:
    """One approver of the home town approves one waiting lookup, proven with their own secret."""

    def work(conn: Connection) -> dict[str, object]:
        row = conn.execute(select(lookup_approvals).where(lookup_approvals.c.id == lookup_id)).first()
        if row is None:
            raise UsageError(N_("no lookup '{lookup_id}' waits for approval"), lookup_id=lookup_id)
        if row.approved_at is not None or row.used_at is not None:
            raise PolicyRejected(N_("lookup {lookup_id} is already approved"), lookup_id=lookup_id)
        if now >= row.valid_until:
            raise PolicyRejected(
                N_("lookup {lookup_id} waited too long (until {valid_until}); ask again"),
                lookup_id=lookup_id,
                valid_until=jst_text(row.valid_until),
            )
        if rules.approver_role(settings, row.tenant, approver) != rules.TENANT_ROLE:
            raise PolicyRejected(
                N_(
                    "'{approver}' is not an approver of {tenant} (exports.tenants.{tenant}.approvers): a "
                    "lookup is approved by the person's home town"
                ),
                approver=approver,
                tenant=row.tenant,
            )
        if approver == row.official:
            raise PolicyRejected(N_("the official asking cannot approve their own lookup"))
        what = {
            "action": APPROVE, "lookup": lookup_id, "digest": row.digest, "tenant": row.tenant,
            "partner": row.partner, "official": row.official, "disaster": row.disaster, "at": now.isoformat(),
        }  # fmt: skip
        proof = credentials.prove(config.approvers, approver, secret, what)
        done = conn.execute(
            update(lookup_approvals)
            .where(lookup_approvals.c.id == lookup_id, lookup_approvals.c.approved_at.is_(None))
            .values(approved_by=approver, approved_at=now)
        ).rowcount
        if done != 1:  # another approver's, between the read above and this write
            raise PolicyRejected(N_("lookup {lookup_id} is already approved"), lookup_id=lookup_id)
        entry = append(conn, actor=approver, action=APPROVED, subject=lookup_id, details=proof.details())
        return {"lookup": lookup_id, "tenant": row.tenant, "partner": row.partner, "approver": approver,
                "credential": proof.credential, "audit_seq": entry.seq}  # fmt: skip

    return audited(engine, work)


def approved_lookup(
    conn: Connection, config: Consortium, settings: ExportSettings, code: str, query: LookupQuery, now: datetime
) -> str | None:
    """The lookup id an approved, unused, unexpired code answers for this very question; ``None`` otherwise.

    The approval is re-checked from the audit chain against the configured credential, so a row
    edited in the database approves nothing.
    """
    lookup_id, _, nonce = code.partition(".")
    row = conn.execute(select(lookup_approvals).where(lookup_approvals.c.id == lookup_id)).first()
    if row is None or not nonce or row.approved_at is None or row.used_at is not None or now >= row.valid_until:
        return None
    if not hmac.compare_digest(row.digest, question_digest(nonce, query)):
        return None
    entries = conn.execute(
        select(audit_log.c.details).where(audit_log.c.action == APPROVED, audit_log.c.subject == lookup_id)
    ).all()
    for (text,) in entries:
        details = json.loads(text)
        statement = details.get("approval") or {}
        if credentials.verify(config.approvers, details) is not None:
            continue
        if (statement.get("digest"), statement.get("tenant")) != (row.digest, query.tenant):
            continue
        if rules.approver_role(settings, row.tenant, str(statement.get("approver"))) == rules.TENANT_ROLE:
            return lookup_id
    return None


def mark_used(conn: Connection, lookup_id: str, now: datetime) -> bool:
    """Spend the code; ``False`` when a concurrent use spent it first (the check in
    :func:`approved_lookup` runs before the registry is read, so two uses can both pass it)."""
    spent = conn.execute(
        update(lookup_approvals)
        .where(lookup_approvals.c.id == lookup_id, lookup_approvals.c.used_at.is_(None))
        .values(used_at=now)
    )
    return spent.rowcount == 1
