"""A fiscal year's bill when a town joins mid-year (後乗り): each town pays for its months only.

The agreement the consortium signed (the seed's 協定書): a joiner pays from the month it starts;
the members' shares change from that month. So a fiscal year (April–March, 地方自治法208条①) is
twelve monthly splits: in each month the contract of that month (without the additions of towns
not yet in) is split among the towns in by the agreed rule. A town's bill for the year is the sum
of its exact monthly quotas, rounded once for the year by largest remainder, so the towns' yen add
up to the year's contract exactly and no town is more than a yen from its exact share.

A month's amount is the term's total cut in equal months (:func:`dc.shares.portion`); past
the term the term's amounts repeat, as the ten-year projection assumes. What a joiner adds
(``per_member_yen``/``per_resident_yen``) is over the term too, so it is billed by the month from
the joiner's first month.

Where the agreement says members never pay more because a town joined
(``costs.joining.members_never_pay_more``), each member's bill is capped at its bill for the same
year without the joiners, and what the cap holds back falls on the joiners, in proportion to their
own quotas — which come from their own months only.

Pure: the contract, the towns, their start dates and the year go in; no clock is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from dc.apportion import round_quotas
from dc.clock import JST
from dc.cost import CostsConfig, TenantUsage
from dc.errors import N_, ConfigError, UsageError
from dc.shares import portion, resource_shares, rule_weights


@dataclass(frozen=True)
class ProratedBill:
    tenant: str
    name: str
    #: months of the fiscal year the town is in the consortium (0-12)
    months: int
    #: the first month it pays for in this year, 00:00 JST (None: not in this year)
    billed_from: datetime | None
    yen: int
    #: what it would pay this year had no town joined during it (None for a joiner)
    without_joiners_yen: int | None
    #: yen - without_joiners_yen (None for a joiner)
    change_yen: int | None
    joiner: bool


@dataclass(frozen=True)
class FiscalYearSplit:
    fiscal_year: int
    #: the year's first and last instants' bounds, JST: [start, end)
    start: datetime
    end: datetime
    total_yen: int
    #: the contract of each month of the year: [{month (JST), yen, tenants}]
    months: list[dict[str, object]]
    tenants: list[ProratedBill]
    members_never_pay_more: bool
    #: whether some months lie past the term (its amounts then repeat)
    beyond_term: bool


def parse_start(text: str) -> date:
    """A joining date ``YYYY-MM-DD`` (a date in JST; the town pays from that date's month)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise UsageError(N_("invalid date '{text}': use YYYY-MM-DD (JST)"), text=text)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(N_("invalid date '{text}': use YYYY-MM-DD (JST)"), text=text) from None


def parse_fiscal_year(text: str) -> int:
    """A 年度 as its first year, ``YYYY`` (2027 = 2027-04-01 to 2028-03-31 JST)."""
    if not re.fullmatch(r"[0-9]{4}", text) or not 1900 <= int(text) <= 9998:
        raise UsageError(N_("invalid fiscal year '{text}': use YYYY (April to the next March)"), text=text)
    return int(text)


def fiscal_year_of(day: date) -> int:
    """The 年度 a day belongs to: April to the next March."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_months(fiscal_year: int) -> list[date]:
    """The first day of each month of 年度 ``fiscal_year``, April first."""
    return [date(fiscal_year + (m > 12), (m - 1) % 12 + 1, 1) for m in range(4, 16)]


def jst_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=JST)


def _month_first(day: date) -> date:
    return date(day.year, day.month, 1)


def without_town(costs: CostsConfig, population: int) -> CostsConfig:
    """The contract before a town of ``population`` joined: its additions taken out again."""
    items = []
    for item in costs.after.items:
        yen = item.yen - item.per_member_yen - item.per_resident_yen * population
        if yen < 0:
            raise ConfigError(
                N_("costs.after.items: {category} is smaller than what a town of {population} adds to it"),
                category=item.category,
                population=population,
            )
        items.append(item.model_copy(update={"yen": yen}))
    return costs.model_copy(update={"after": costs.after.model_copy(update={"items": items})})


def _month_index(costs: CostsConfig, month: date) -> int:
    year, mon = (int(x) for x in costs.term.start.split("-"))
    return (month.year - year) * 12 + month.month - mon


def capped_largest_remainder(
    total: int, quotas: Sequence[Fraction], caps: Sequence[tuple[Fraction, int] | None]
) -> list[int]:
    """Largest remainder of ``quotas`` (summing to ``total``), no capped part above its cap.

    A cap is (exact, whole): the part's exact quota is lowered to ``exact`` and what that holds
    back goes to the uncapped parts in proportion to their quotas; in rounding, a capped part is
    never raised above ``whole``. Whatever yen no capped part may take go to the uncapped parts,
    the largest first. Without caps this is :func:`dc.apportion.round_quotas`.
    """
    adjusted = [min(q, c[0]) if c is not None else q for q, c in zip(quotas, caps, strict=True)]
    free = sorted((i for i, c in enumerate(caps) if c is None and quotas[i] > 0), key=lambda i: (-quotas[i], i))
    held = sum((q - a for q, a in zip(quotas, adjusted, strict=True)), Fraction(0))
    if held:
        base = sum((quotas[i] for i in free), Fraction(0))
        if not base:
            raise ValueError("the caps hold back yen that nobody uncapped can take")
        for i in free:
            adjusted[i] += held * quotas[i] / base
    parts = [a.numerator // a.denominator for a in adjusted]
    left = total - sum(parts)
    for i in sorted(range(len(adjusted)), key=lambda i: (-(adjusted[i] - parts[i]), i)):
        if left <= 0 or adjusted[i] == parts[i]:
            break
        cap = caps[i]
        if cap is None or parts[i] < cap[1]:
            parts[i] += 1
            left -= 1
    for k in range(left):
        if not free:
            raise ValueError("the caps leave yen that nobody uncapped can take")
        parts[free[k % len(free)]] += 1
    return parts


def prorate_fiscal_year(
    costs: CostsConfig,
    tenants: Mapping[str, tuple[str, int]],
    starts: Mapping[str, date],
    fiscal_year: int,
    usage: Mapping[str, TenantUsage] | None = None,
) -> FiscalYearSplit:
    """Each town's bill for 年度 ``fiscal_year``, by its months in the consortium.

    ``costs`` is the contract with every town of ``tenants`` in it; ``starts`` gives the first
    day of each town that joined late (a town without one is in from the start). A town joining
    during the year is a joiner for :attr:`ProratedBill.without_joiners_yen`.
    """
    if not tenants:
        raise ConfigError(N_("no tenants to split the costs among"))
    first = fiscal_months(fiscal_year)[0]
    joiners = [t for t in tenants if t in starts and _month_first(starts[t]) > first]
    monthly, months, beyond = _quotas(costs, tenants, starts, fiscal_year, usage or {})
    total = sum(int(m["yen"]) for m in months)  # type: ignore[call-overload]
    ids = list(tenants)
    members = {t: v for t, v in tenants.items() if t not in joiners}
    without: dict[str, tuple[Fraction, int]] = {}
    if joiners and members:
        base = costs
        for t in joiners:
            base = without_town(base, tenants[t][1])
        m_monthly, m_months, _ = _quotas(base, members, starts, fiscal_year, usage or {})
        m_total = sum(int(m["yen"]) for m in m_months)  # type: ignore[call-overload]
        m_quotas = {t: sum((q[t] for q in m_monthly), Fraction(0)) for t in members}
        whole = round_quotas([m_quotas[t] for t in members], m_total)
        without = {t: (m_quotas[t], w) for t, w in zip(members, whole, strict=True)}
        if costs.joining.members_never_pay_more:
            for q, qw, month in zip(monthly, m_monthly, months, strict=True):
                _hold_back(q, qw, [j for j in joiners if j in month["tenants"]])  # type: ignore[operator]
    never_more = costs.joining.members_never_pay_more and bool(without)
    quotas = [sum((q[t] for q in monthly), Fraction(0)) for t in ids]
    yen = capped_largest_remainder(total, quotas, [without.get(t) if never_more else None for t in ids])
    bills = []
    for t, amount in zip(ids, yen, strict=True):
        in_months = [m for m in fiscal_months(fiscal_year) if _present(t, starts, m)]
        was = without[t][1] if t in without else None
        bills.append(
            ProratedBill(
                tenant=t,
                name=tenants[t][0],
                months=len(in_months),
                billed_from=jst_midnight(in_months[0]) if in_months else None,
                yen=amount,
                without_joiners_yen=was,
                change_yen=amount - was if was is not None else None,
                joiner=t in joiners,
            )
        )
    return FiscalYearSplit(
        fiscal_year=fiscal_year,
        start=jst_midnight(first),
        end=jst_midnight(date(fiscal_year + 1, 4, 1)),
        total_yen=total,
        months=months,
        tenants=bills,
        members_never_pay_more=costs.joining.members_never_pay_more,
        beyond_term=beyond,
    )


def _hold_back(quotas: dict[str, Fraction], without: Mapping[str, Fraction], joiners: Sequence[str]) -> None:
    """One month under ``members_never_pay_more``: each member's quota at most its quota without
    the joiners; what that holds back goes to the joiners in that month, by their own quotas."""
    held = sum((max(quotas[t] - w, Fraction(0)) for t, w in without.items()), Fraction(0))
    if not held or not joiners:
        return
    base = sum((quotas[j] for j in joiners), Fraction(0))
    shares = {j: quotas[j] / base if base else Fraction(1, len(joiners)) for j in joiners}
    for t, w in without.items():
        quotas[t] = min(quotas[t], w)
    for j in joiners:
        quotas[j] += held * shares[j]


def _present(tenant: str, starts: Mapping[str, date], month: date) -> bool:
    return tenant not in starts or _month_first(starts[tenant]) <= month


def _quotas(
    costs: CostsConfig,
    tenants: Mapping[str, tuple[str, int]],
    starts: Mapping[str, date],
    fiscal_year: int,
    usage: Mapping[str, TenantUsage],
) -> tuple[list[dict[str, Fraction]], list[dict[str, object]], bool]:
    """Exact quotas per month and town, the contract of each month, and whether the term was exceeded."""
    term_months = costs.term.years * 12
    monthly: list[dict[str, Fraction]] = []
    months: list[dict[str, object]] = []
    beyond = False
    for month in fiscal_months(fiscal_year):
        ids = [t for t in tenants if _present(t, starts, month)]
        contract = costs
        for t in tenants:
            if t not in ids:
                contract = without_town(contract, tenants[t][1])
        index = _month_index(costs, month)
        beyond = beyond or index >= term_months
        amounts = [portion(item.yen, term_months, index % term_months) if index >= 0 and ids else 0
                   for item in contract.after.items]  # fmt: skip
        months.append({"month": jst_midnight(month), "yen": sum(amounts), "tenants": ids})
        quotas = {t: Fraction(0) for t in tenants}
        monthly.append(quotas)
        if not sum(amounts):
            continue
        population = sum(tenants[t][1] for t in ids)
        pop = {t: Fraction(tenants[t][1], population) for t in ids}
        measured = resource_shares(ids, usage, contract.usage_measures)
        res = measured if measured is not None else pop
        for item, amount in zip(contract.after.items, amounts, strict=True):
            for t, w in zip(ids, rule_weights(contract.rule_of(item), ids, pop, res), strict=True):
                quotas[t] += amount * w
    return monthly, months, beyond
