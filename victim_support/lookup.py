"""Finding one evacuee: a shelter official asks whether the person in front of them is a resident.

Each lookup is a request of its own under ``exports.lookups`` (pre-authorised for a declared
disaster and a listed partner, see :mod:`victim_support.lookuprules`), answered from the
newest snapshot at the export site like a build, and audited — one entry per lookup, refused
ones included, never the name asked for (the answer's pseudonymous ``person_ref``s are what
the audit keeps). It returns at most ``max_candidates`` people with only the columns the law
tables allow; more matches than that answer "ambiguous", with nobody, so the official asks
for the 町字. Every answer takes the same ``answer_seconds``, hit or miss.

A resident under 支援措置 (DV等) or 抑止 is never returned: the lookup answers as if nobody
matched, and the home town's officials find a notice in their queue (``lookup_notices``,
``bcpctl export notices``) naming the partner and official who asked — the town, not the
shelter, decides what to do.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from dc.clock import jst_day
from dc.config import Consortium
from dc.errors import N_, Message
from dc.state import UtcDateTime, metadata
from victim_support.audit import append, audited
from victim_support.enrolment import enrolled_officials, with_enrolled
from victim_support.errors import PolicyRejected, RegistryError
from victim_support.extract import SOURCES, column_values, needed_sources
from victim_support.lookupapproval import REFUSED_CODE, approved_lookup, file_waiting, mark_used
from victim_support.lookuprules import (
    LookupQuery,
    authorisation_reasons,
    judge_lookup,
    needs_approval,
    query_reasons,
    rate_reasons,
    window_start,
)
from victim_support.namematch import name_key, part_matches
from victim_support.policy import excluded_row
from victim_support.pseudonym import Pseudonymizer, load_secret
from victim_support.replica import registry_snapshot
from victim_support.schema import STATUS_RESIDENT, registry_info, residents
from victim_support.settings import ExportSettings, LookupRule, default_site, registry_system

ANSWERED = "lookup.answered"
REFUSED = "lookup.refused"
NOTICE = "lookup.protected_notice"

lookups = Table(
    "lookups",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner", String(64), nullable=False, index=True),
    Column("official", Text, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False, index=True),
    #: asked (counted against the limits from the moment it passes them), answered
    Column("outcome", String(16), nullable=False),
    Column("candidates", Integer, nullable=False, default=0),
)

#: the home town's queue: a protected resident was looked up (never shown to the partner)
lookup_notices = Table(
    "lookup_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("lookup_id", String(40), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("official", Text, nullable=False),
    #: the resident under the town's own pseudonym (its officials can recompute it; nobody else can)
    Column("resident_ref", String(64), nullable=False),
    Column("read_at", UtcDateTime, nullable=True),
)

_IDENTITY = ("atena_no", "family_name", "given_name", "family_name_kana", "given_name_kana")


@dataclass(frozen=True)
class LookupAnswer:
    id: str
    tenant: str
    partner: str
    columns: tuple[str, ...]
    candidates: list[dict[str, str]]
    #: more people matched than ``max_candidates``: nobody is returned, the 町字 narrows it
    ambiguous: bool
    site: str
    as_of: datetime
    #: every answer takes this long; ``padded`` is false when the work alone took longer
    answer_seconds: float
    padded: bool
    audit_seq: int
    timings: dict[str, float] = field(default_factory=dict)
    #: the lookup waits for one approver of the home town (nobody is in the answer yet): ask again
    #: with ``approval_code`` once approved
    waiting: bool = False
    approval_code: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.candidates)


class _CodeSpent(Exception):
    """A concurrent use of the same approval code was answered first."""


def lookup_evacuee(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    query: LookupQuery,
    *,
    now: datetime,
    config_dir: Path | None,
    site: str | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    approval: str | None = None,
) -> LookupAnswer:
    """Answer one lookup, or refuse it (exit 2, audited) when it could enumerate or is not authorised.

    For a partner whose lookups need approval, the first call files the lookup and answers with
    ``waiting`` and a code; the call with ``approval`` (that code, once approved) is answered.
    """
    started = monotonic()
    # one official, however their name is padded: the declared-officials check, the per-official
    # limit and the audit all see the same name
    query = replace(query, official=query.official.strip())
    config = with_enrolled(config, engine)
    lookup_id = f"lk-{now:%Y%m%d}-{secrets.token_hex(4)}"
    rule = settings.lookups
    today = jst_day(now)
    reasons = query_reasons(query, today)
    if query.partner not in config.partners:
        reasons.append(Message(N_("unknown partner '{partner}' (an enrolled partner only)"), partner=query.partner))
    if query.tenant not in config.tenants:
        known = ", ".join(config.tenants)
        reasons.append(Message(N_("unknown tenant '{tenant}' (known: {known})"), tenant=query.tenant, known=known))
    reasons += authorisation_reasons(rule, query)
    declared = enrolled_officials(engine).get(query.partner)
    if declared and query.official not in declared:
        reasons.append(
            Message(
                N_("'{official}' is not an official that {partner} enrolled (partner list)"),
                official=query.official,
                partner=query.partner,
            )
        )
    columns: tuple[str, ...] = ()
    if not reasons and rule is not None:
        decision = judge_lookup(
            rule,
            query,
            partner_lg_code=config.partners[query.partner].lg_code,
            tenant_lg_code=config.tenants[query.tenant].lg_code,
            today=today,
        )
        reasons += decision.reasons
        columns = decision.fields
    if rule is not None and not reasons and approval is not None and not needs_approval(rule, query.partner):
        reasons.append(
            Message(
                N_("partner '{partner}' looks up without approvals: ask without an approval code"),
                partner=query.partner,
            )
        )
    if reasons or rule is None:
        _refuse(engine, lookup_id, query, reasons)
    if needs_approval(rule, query.partner) and approval is not None:
        with engine.connect() as conn:
            approved = approved_lookup(conn, config, settings, approval, query, now)
        if approved is None:
            _refuse(engine, lookup_id, query, [REFUSED_CODE])
        lookup_id = approved  # counted against the limits when it was filed
    else:
        limited = audited(engine, lambda conn: _reserve(conn, lookup_id, query, rule, now))
        if limited:
            _refuse(engine, lookup_id, query, limited)
    if needs_approval(rule, query.partner) and approval is None:
        return _waiting(engine, lookup_id, query, rule, now, started, monotonic, sleep)

    tenant = config.tenants[query.tenant]
    partner = config.partners[query.partner]
    secret = load_secret(settings, query.tenant, config_dir)
    site = site or default_site(config, settings)
    system = registry_system(config, settings, query.tenant)
    with registry_snapshot(config, system, site, tenant_lg_code=tenant.lg_code, config_dir=config_dir) as (
        registry,
        source,
    ):
        found, protected = _match(registry, query)
        ambiguous = len(found) > rule.max_candidates
        rows = [] if ambiguous else _rows(registry, found, columns, Pseudonymizer(secret, partner.lg_code))
    own = Pseudonymizer(secret, tenant.lg_code)

    def record(conn: Connection) -> int:
        conn.execute(update(lookups).where(lookups.c.id == lookup_id).values(outcome="answered", candidates=len(rows)))
        if approval is not None and not mark_used(conn, lookup_id, now):
            raise _CodeSpent  # rolls the answer back: a code answers once
        for atena in protected:
            ref = own.person(atena)
            conn.execute(
                insert(lookup_notices).values(
                    tenant=query.tenant,
                    at=now,
                    lookup_id=lookup_id,
                    partner=query.partner,
                    official=query.official,
                    resident_ref=ref,
                )
            )
            append(
                conn,
                actor=query.official,
                action=NOTICE,
                subject=query.tenant,
                details={"lookup": lookup_id, "partner": query.partner, "resident_ref": ref},
            )
        entry = append(
            conn,
            actor=query.official,
            action=ANSWERED,
            subject=f"{query.tenant}->{query.partner}",
            details={
                "lookup": lookup_id,
                "disaster": query.disaster_id,
                "basis": rule.basis,
                "columns": list(columns),
                "candidates": [r.get("person_ref", "") for r in rows],
                "ambiguous": ambiguous,
                "site": site,
                "snapshot": source.snapshot_id[:16],
                "filed_by": query.filed_by or "",
            },
        )
        return entry.seq

    try:
        seq = audited(engine, record)
    except _CodeSpent:
        _refuse(engine, lookup_id, query, [REFUSED_CODE])
    elapsed = monotonic() - started
    if elapsed < rule.answer_seconds:
        sleep(rule.answer_seconds - elapsed)
    return LookupAnswer(
        id=lookup_id,
        tenant=query.tenant,
        partner=query.partner,
        columns=columns,
        candidates=rows,
        ambiguous=ambiguous,
        site=site,
        as_of=source.as_of,
        answer_seconds=rule.answer_seconds,
        padded=elapsed <= rule.answer_seconds,
        audit_seq=seq,
        timings={"work": round(elapsed, 3)},
    )


def _waiting(
    engine: Engine,
    lookup_id: str,
    query: LookupQuery,
    rule: LookupRule,
    now: datetime,
    started: float,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> LookupAnswer:
    """File the lookup for its approval: nobody looked for yet, the same answer time as any lookup."""

    def work(conn: Connection) -> tuple[str, int]:
        conn.execute(update(lookups).where(lookups.c.id == lookup_id).values(outcome="waiting"))
        return file_waiting(conn, lookup_id, query, now, rule.approval_valid_for)

    code, seq = audited(engine, work)
    elapsed = monotonic() - started
    if elapsed < rule.answer_seconds:
        sleep(rule.answer_seconds - elapsed)
    return LookupAnswer(
        id=lookup_id, tenant=query.tenant, partner=query.partner, columns=(), candidates=[], ambiguous=False,
        site="", as_of=now, answer_seconds=rule.answer_seconds, padded=elapsed <= rule.answer_seconds,
        audit_seq=seq, waiting=True, approval_code=code,
    )  # fmt: skip


def _refuse(engine: Engine, lookup_id: str, query: LookupQuery, reasons: list[str]) -> NoReturn:
    audited(
        engine,
        lambda conn: append(
            conn,
            actor=query.official or "?",
            action=REFUSED,
            subject=f"{query.tenant}->{query.partner}",
            details={
                "lookup": lookup_id,
                "disaster": query.disaster_id,
                "reasons": reasons,
                "filed_by": query.filed_by or "",
            },
        ),
    )
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    raise PolicyRejected(N_("lookup refused: {reasons_}{more}"), tuple(reasons), reasons_=reasons[0], more=more)


def _reserve(conn: Connection, lookup_id: str, query: LookupQuery, rule: LookupRule, now: datetime) -> list[str]:
    """Count the last hour's lookups and, under the limits, count this one (in one transaction)."""
    _serialise(conn, query.partner)
    recent = lookups.c.at > window_start(now)
    by_partner = conn.execute(select(func.count()).where(recent, lookups.c.partner == query.partner)).scalar_one()
    by_official = conn.execute(
        select(func.count()).where(recent, lookups.c.partner == query.partner, lookups.c.official == query.official)
    ).scalar_one()
    reasons = rate_reasons(rule, by_official=by_official, by_partner=by_partner)
    if not reasons:
        conn.execute(
            insert(lookups).values(
                id=lookup_id,
                partner=query.partner,
                official=query.official,
                tenant=query.tenant,
                at=now,
                outcome="asked",
            )
        )
    return reasons


def _serialise(conn: Connection, partner: str) -> None:
    """Hold off the partner's other lookups until this transaction ends: a count and an insert
    that interleave with another lookup's let a burst of concurrent lookups all pass the limit."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"bcpctl/lookups/{partner}".encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        # SQLite has one writer: a write (of nothing) takes its lock now, before the count
        conn.execute(update(lookups).where(lookups.c.id == "").values(outcome="asked"))


def _match(registry: Engine, query: LookupQuery) -> tuple[list[str], list[str]]:
    """宛名番号 of the current residents the query names: (returnable, protected)."""
    family, given = name_key(query.family), name_key(query.given)
    where = [residents.c.status == STATUS_RESIDENT, residents.c.birth_date == query.birth_date]
    try:
        with registry.connect() as conn:
            rows = conn.execute(
                select(
                    *(residents.c[c] for c in _IDENTITY),
                    residents.c.machiaza_id,
                    residents.c.machiaza_name,
                    residents.c.shien_sochi,
                    residents.c.yokushi,
                ).where(*where)
            ).all()
    except SQLAlchemyError as exc:
        raise RegistryError(N_("cannot read the restored registry: {exc}"), exc=str(exc).splitlines()[0]) from None
    area = name_key(query.machiaza) if query.machiaza else None
    found: list[str] = []
    protected: list[str] = []
    for row in rows:
        atena, fam, giv, fam_kana, giv_kana, area_id, area_name, shien, yokushi = tuple(row)
        if not (part_matches(family, fam, fam_kana) and part_matches(given, giv, giv_kana)):
            continue
        if area is not None and area not in (name_key(area_id), name_key(area_name)):
            continue
        (protected if excluded_row(shien_sochi=bool(shien), yokushi=bool(yokushi)) else found).append(atena)
    return found, protected


def _rows(registry: Engine, atena: list[str], columns: tuple[str, ...], pz: Pseudonymizer) -> list[dict[str, str]]:
    if not atena:
        return []
    needed = needed_sources(columns)
    ix = {name: i for i, name in enumerate(needed)}
    query = select(*(SOURCES[n] for n in needed)).where(residents.c.atena_no.in_(atena)).order_by(residents.c.atena_no)
    with registry.connect() as conn:
        info = dict(conn.execute(select(registry_info.c.key, registry_info.c.value)).all())
        kept = list(conn.execute(query).all())
    values = [column_values(name, kept, ix, pz, info) for name in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def read_notices(engine: Engine, tenant: str | None = None) -> list[dict[str, Any]]:
    """The home towns' queue of protected residents looked up, newest first."""
    query = select(lookup_notices).order_by(lookup_notices.c.id.desc())
    if tenant:
        query = query.where(lookup_notices.c.tenant == tenant)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
