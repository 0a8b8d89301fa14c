"""What makes a lookup of one evacuee allowed: pure rules, no I/O, the clock passed in.

A lookup answers "is this person one of ours, and who exactly" for a person standing in front
of a shelter official; it must never become a way to list residents. So a query names a whole
family name, a whole given name and a full date of birth (no wildcard, no name part alone),
the partner and the disaster must be pre-authorised by ``exports.lookups``, and each official
and each partner has a number of lookups per hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dc.errors import N_, Message
from victim_support.namematch import has_wildcard, name_key
from victim_support.policy import Decision, NewRequest, Scope, evaluate
from victim_support.settings import LookupRule

PURPOSE = "EVACUEE_IDENTIFICATION"
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LookupQuery:
    partner: str
    tenant: str
    disaster_id: str
    family: str
    given: str
    birth_date: date
    #: the former address's 町字 (name or id), when the person remembers it
    machiaza: str | None
    #: the official asking (their name, as the partner knows them): the rate limit's unit
    official: str
    #: who filed it, as the channel proves it (``partner:<id>`` or ``os:<user>``)
    filed_by: str | None = None


def query_reasons(query: LookupQuery, today: date) -> list[str]:
    """Why ``query`` could enumerate residents or is not a lookup at all (empty: it is fine)."""
    reasons: list[str] = []
    if has_wildcard(query.family):
        reasons.append(Message(N_("the family name contains a wildcard; a lookup names one person exactly")))
    elif not name_key(query.family):
        reasons.append(
            Message(N_("a family name is required (a lookup needs family name, given name and date of birth)"))
        )
    if has_wildcard(query.given):
        reasons.append(Message(N_("the given name contains a wildcard; a lookup names one person exactly")))
    elif not name_key(query.given):
        reasons.append(
            Message(N_("a given name is required (a lookup needs family name, given name and date of birth)"))
        )
    if query.birth_date > today:
        reasons.append(Message(N_("date of birth {birth_date} is in the future"), birth_date=str(query.birth_date)))
    if not query.official.strip():
        reasons.append(Message(N_("the official asking must be named (--official)")))
    if query.machiaza is not None and has_wildcard(query.machiaza):
        reasons.append(Message(N_("the 町字 contains a wildcard")))
    return reasons


def authorisation_reasons(rule: LookupRule | None, query: LookupQuery) -> list[str]:
    """Why this partner may not look up for this disaster at all (pre-authorised or under approval)."""
    if rule is None:
        return [Message(N_("lookups are not configured (exports.lookups)"))]
    reasons: list[str] = []
    if query.partner not in rule.partners and query.partner not in rule.approval:
        reasons.append(
            Message(
                N_(
                    "partner '{partner}' is not pre-authorised for lookups nor under an approval rule "
                    "(exports.lookups.partners, exports.lookups.approval)"
                ),
                partner=query.partner,
            )
        )
    if query.disaster_id not in rule.disasters:
        reasons.append(
            Message(
                N_("disaster '{disaster}' is not a declared disaster (exports.lookups.disasters)"),
                disaster=query.disaster_id,
            )
        )
    return reasons


def needs_approval(rule: LookupRule, partner: str) -> bool:
    """Whether each of ``partner``'s lookups waits for one approver of the home town."""
    return rule.approval.get(partner) == "approval"


def rate_reasons(rule: LookupRule, *, by_official: int, by_partner: int) -> list[str]:
    """Refuse the next lookup when the last hour's already reach a limit."""
    reasons: list[str] = []
    if by_official >= rule.per_official_per_hour:
        reasons.append(
            Message(
                N_("this official has made {count} lookups in the last hour (limit {limit})"),
                count=by_official,
                limit=rule.per_official_per_hour,
            )
        )
    if by_partner >= rule.per_partner_per_hour:
        reasons.append(
            Message(
                N_("this partner has made {count} lookups in the last hour (limit {limit})"),
                count=by_partner,
                limit=rule.per_partner_per_hour,
            )
        )
    return reasons


def window_start(now: datetime) -> datetime:
    return now - WINDOW


def judge_lookup(
    rule: LookupRule, query: LookupQuery, *, partner_lg_code: str, tenant_lg_code: str, today: date
) -> Decision:
    """The law tables' decision on the rule's fields for 避難者の特定, as for any request (the columns when allowed)."""
    return evaluate(
        NewRequest(
            partner=query.partner,
            tenant=query.tenant,
            disaster_id=query.disaster_id,
            disaster_date=today,
            basis=rule.basis,
            purposes=(PURPOSE,),
            fields=rule.fields,
            scope=Scope(all_areas=True),
            requested_by=query.official,
            retention_days=1,
        ),
        partner_lg_code=partner_lg_code,
        tenant_lg_code=tenant_lg_code,
        today=today,
        max_retention_days=1,
    )
