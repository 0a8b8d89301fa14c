"""The split of the shared contract among the members, per town before/after, and ten years ahead.

Pure: the ``costs:`` section, the towns' populations and their measured use go in, yen come out.
Shares are exact fractions until the end. The tenants x categories table is rounded so that each
category and each tenant's bill are exact at once (controlled rounding, dc/apportion.py); each
subsidy is split by largest remainder. An invoice that is one yen off cannot be booked, so the
towns' yen always add up to the total exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from dc.apportion import controlled_rounding, largest_remainder
from dc.cost import CostsConfig, TenantUsage
from dc.errors import N_, ConfigError, UsageError
from dc.shares import portion, resource_shares, rule_weights

if TYPE_CHECKING:
    from dc.proration import FiscalYearSplit


@dataclass(frozen=True)
class YearRow:
    """One year of a town's projection (the term's amounts repeat when the projection is longer)."""

    year: int
    before_yen: int
    after_yen: int
    #: negative: the town's part of the subsidies received that year
    subsidy_yen: int
    saving_yen: int


@dataclass(frozen=True)
class TenantShare:
    tenant: str
    name: str
    population: int
    population_share: float
    #: the 利用量割 share: measured use, or the population share when nothing was measured
    resource_share: float
    equal_share: float
    #: the town's part of the shared contract (after) over the period
    yen: int
    by_category: dict[str, int]
    usage: TenantUsage
    before_yen: int | None = None
    before_by_category: dict[str, int] = field(default_factory=dict)
    saving_yen: int | None = None
    saving_pct: float | None = None
    #: negative: the town's part of every subsidy over the projection
    subsidy_yen: int = 0
    projection: list[YearRow] = field(default_factory=list)
    projection_before_yen: int | None = None
    #: after, net of subsidies, over the projection
    projection_after_yen: int = 0
    projection_saving_yen: int | None = None
    projection_saving_pct: float | None = None
    #: the effect of starting earlier (or later) than planned: {planned, actual, months_earlier, yen}
    go_live: dict[str, object] | None = None


@dataclass(frozen=True)
class CostSplit:
    total_yen: int
    period: str | None
    resource_basis: str
    tenants: list[TenantShare]
    #: the shared contract's categories, each with its yen and rule
    categories: list[dict[str, object]] = field(default_factory=list)
    before_categories: list[dict[str, object]] = field(default_factory=list)
    before_total_yen: int | None = None
    saving_yen: int | None = None
    saving_pct: float | None = None
    #: each subsidy as a negative item
    subsidies: list[dict[str, object]] = field(default_factory=list)
    term: dict[str, object] = field(default_factory=dict)
    rule: dict[str, float] = field(default_factory=dict)
    projection_years: int = 10
    #: with ``--fiscal-year``: that 年度's bills by each town's months (dc/proration.py)
    fiscal_year: FiscalYearSplit | None = None


def _months(month: str) -> int:
    year, mon = (int(x) for x in month.split("-"))
    return year * 12 + mon - 1


def _month_index(costs: CostsConfig, period: str) -> int:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise UsageError(N_("invalid period '{period}': use YYYY-MM"), period=period)
    index = _months(period) - _months(costs.term.start)
    if not 0 <= index < costs.term.years * 12:
        raise UsageError(
            N_("period {period} is outside the cost term ({start}, {years} years)"),
            period=period,
            start=costs.term.start,
            years=costs.term.years,
        )
    return index


def _pct(saving: int, base: int) -> float | None:
    return round(100 * saving / base, 1) if base else None


def split_costs(
    costs: CostsConfig,
    tenants: Mapping[str, tuple[str, int]],
    usage: Mapping[str, TenantUsage] | None = None,
    *,
    period: str | None = None,
) -> CostSplit:
    """Split the shared contract among ``tenants`` ({id: (name, population)}, config order).

    With ``period`` (YYYY-MM), the amounts are that month's portion of the term; the projection
    and the start-date effect are always over the whole term.
    """
    if not tenants:
        raise ConfigError(N_("no tenants to split the costs among"))
    ids = list(tenants)
    usage = usage or {}
    months = costs.term.years * 12
    index = _month_index(costs, period) if period else None
    population_total = sum(pop for _, pop in tenants.values())
    pop = {t: Fraction(tenants[t][1], population_total) for t in ids}
    measured = resource_shares(ids, usage, costs.usage_measures)
    res = measured if measured is not None else pop

    def amount(yen: int) -> int:
        return yen if index is None else portion(yen, months, index)

    term_cells = _round_table(costs, ids, pop, res, whole=True, amount=amount)
    cells = term_cells if index is None else _round_table(costs, ids, pop, res, whole=False, amount=amount)
    categories = [
        {"category": item.category, "yen": amount(item.yen), "rule": costs.rule_of(item).model_dump()}
        for item in costs.after.items
    ]
    subsidies = {t: [0] * len(costs.subsidies) for t in ids}
    for j, subsidy in enumerate(costs.subsidies):
        for t, yen in zip(ids, largest_remainder(subsidy.yen, rule_weights(subsidy.rule, ids, pop, res)), strict=True):
            subsidies[t][j] = -yen
    before = costs.before.tenants if costs.before else {}
    shares = [
        _tenant(costs, t, tenants[t], pop[t], res[t], len(ids), cells[i], term_cells[i], before.get(t), subsidies[t],
                usage.get(t, TenantUsage()), amount)
        for i, t in enumerate(ids)
    ]  # fmt: skip
    total = sum(c["yen"] for c in categories)  # type: ignore[misc]
    before_total = sum(s.before_yen for s in shares if s.before_yen is not None) if before else None
    before_categories = [
        {"category": c, "yen": sum(amount(before[t].get(c, 0)) for t in before)}
        for c in (costs.before.categories if costs.before else [])
    ]
    return CostSplit(
        total_yen=total,
        period=period,
        resource_basis="measured" if measured is not None else "population (no resource use measured)",
        tenants=shares,
        categories=categories,
        before_categories=before_categories,
        before_total_yen=before_total,
        saving_yen=before_total - total if before_total is not None else None,
        saving_pct=_pct(before_total - total, before_total) if before_total else None,
        subsidies=[{"name": s.name, "yen": -s.yen, "year": s.year} for s in costs.subsidies],
        term={"start": costs.term.start, "years": costs.term.years},
        rule=costs.rule.model_dump(),
        projection_years=costs.projection_years,
    )


def _round_table(costs: CostsConfig, ids: Sequence[str], pop: Mapping[str, Fraction], res: Mapping[str, Fraction],
                 *, whole: bool, amount: Callable[[int], int]) -> list[list[int]]:  # fmt: skip
    """The tenants x categories table of yen, exact both ways (over the term, or the period's ``amount``)."""
    column_totals = [item.yen if whole else amount(item.yen) for item in costs.after.items]
    quotas: list[list[Fraction]] = [[] for _ in ids]
    for item, yen in zip(costs.after.items, column_totals, strict=True):
        for row, w in zip(quotas, rule_weights(costs.rule_of(item), ids, pop, res), strict=True):
            row.append(yen * w)
    return controlled_rounding(quotas, column_totals)


def _tenant(
    costs: CostsConfig,
    tenant: str,
    named: tuple[str, int],
    pop: Fraction,
    res: Fraction,
    count: int,
    cells: list[int],
    term_cells: list[int],
    before: Mapping[str, int] | None,
    subsidies: list[int],
    usage: TenantUsage,
    amount: Callable[[int], int],
) -> TenantShare:
    years = costs.term.years
    yen, term_after = sum(cells), sum(term_cells)
    by_before = {c: amount(before.get(c, 0)) for c in costs.before.categories} if before and costs.before else {}
    before_yen = sum(by_before.values()) if before else None
    term_before = sum(before.values()) if before else None
    rows = []
    for k in range(costs.projection_years):
        after_k = portion(term_after, years, k % years)
        before_k = portion(term_before, years, k % years) if term_before is not None else 0
        subsidy_k = sum(y for y, s in zip(subsidies, costs.subsidies, strict=True) if s.year == k + 1)
        rows.append(YearRow(k + 1, before_k, after_k, subsidy_k, before_k - after_k - subsidy_k))
    p_before = sum(r.before_yen for r in rows) if before else None
    p_after = sum(r.after_yen + r.subsidy_yen for r in rows)
    go_live = None
    if (shift := costs.go_live.get(tenant)) is not None and term_before is not None:
        earlier = _months(shift.planned) - _months(shift.actual)
        go_live = {
            "planned": shift.planned,
            "actual": shift.actual,
            "months_earlier": earlier,
            "yen": round(Fraction(term_before - term_after) * earlier / (years * 12)),
        }
    return TenantShare(
        tenant=tenant,
        name=named[0],
        population=named[1],
        population_share=round(float(pop), 6),
        resource_share=round(float(res), 6),
        equal_share=round(1 / count, 6),
        yen=yen,
        by_category={item.category: cells[j] for j, item in enumerate(costs.after.items)},
        usage=usage,
        before_yen=before_yen,
        before_by_category=by_before,
        saving_yen=before_yen - yen if before_yen is not None else None,
        saving_pct=_pct(before_yen - yen, before_yen) if before_yen else None,
        subsidy_yen=sum(subsidies),
        projection=rows,
        projection_before_yen=p_before,
        projection_after_yen=p_after,
        projection_saving_yen=p_before - p_after if p_before is not None else None,
        projection_saving_pct=_pct(p_before - p_after, p_before) if p_before else None,
        go_live=go_live,
    )
