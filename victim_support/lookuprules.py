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
    reasons = []
    for label, text in (("family name", query.family), ("given name", query.given)):
        if has_wildcard(text):
            reasons.append(f"the {label} contains a wildcard; a lookup names one person exactly")
        elif not name_key(text):
            reasons.append(f"a {label} is required (a lookup needs family name, given name and date of birth)")
    if query.birth_date > today:
        reasons.append(f"date of birth {query.birth_date} is in the future")
    if not query.official.strip():
        reasons.append("the official asking must be named (--official)")
    if query.machiaza is not None and has_wildcard(query.machiaza):
        reasons.append("the 町字 contains a wildcard")
    return reasons


def authorisation_reasons(rule: LookupRule | None, query: LookupQuery) -> list[str]:
    """Why this partner may not look up for this disaster at all (pre-authorised or under approval)."""
    if rule is None:
        return ["lookups are not configured (exports.lookups)"]
    reasons = []
    if query.partner not in rule.partners and query.partner not in rule.approval:
        reasons.append(
            f"partner '{query.partner}' is not pre-authorised for lookups nor under an approval rule "
            "(exports.lookups.partners, exports.lookups.approval)"
        )
    if query.disaster_id not in rule.disasters:
        reasons.append(f"disaster '{query.disaster_id}' is not a declared disaster (exports.lookups.disasters)")
    return reasons


def needs_approval(rule: LookupRule, partner: str) -> bool:
    """Whether each of ``partner``'s lookups waits for one approver of the home town."""
    return rule.approval.get(partner) == "approval"


def rate_reasons(rule: LookupRule, *, by_official: int, by_partner: int) -> list[str]:
    """Refuse the next lookup when the last hour's already reach a limit."""
    reasons = []
    if by_official >= rule.per_official_per_hour:
        reasons.append(
            f"this official has made {by_official} lookups in the last hour (limit {rule.per_official_per_hour})"
        )
    if by_partner >= rule.per_partner_per_hour:
        reasons.append(
            f"this partner has made {by_partner} lookups in the last hour (limit {rule.per_partner_per_hour})"
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
