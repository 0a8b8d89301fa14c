"""The cost split (割り勘) of the shared data center between its member municipalities.

Sharing is why the consortium exists: the reference consortium (いばらき自治体クラウド) cut
the compared costs from 41,700万円 to 28,700万円 (31%) by running four municipalities'
systems on shared hardware under one contract. Who pays what is agreed in the 協定書: here,
per cost category, a mix of each tenant's share of the population (the usual basis between
municipalities) and its share of measured resource use (repository bytes, backup time, drill
time), so a tenant that stores or restores much more pays for it.

Everything here is pure: the configuration's ``costs:`` section, the populations and the
measured usage go in, yen come out. Shares are exact fractions until the end; each tenant's
yen are the largest-remainder rounding of its exact share of the total, and the per-category
breakdown is rounded so that it adds up both ways (dc/apportion.py). The tenants' yen always
add up to the total exactly: an invoice that is one yen off cannot be booked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dc.apportion import controlled_rounding
from dc.errors import ConfigError, UsageError

MEASURES = ("repository_bytes", "backup_seconds", "drill_seconds")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostItem(_Model):
    """One cost category, e.g. データセンター利用料, and how it is split."""

    category: str = Field(min_length=1)
    yen: int = Field(ge=0)
    #: weight of population in this category's split (the rest follows measured use).
    population_weight: float | None = Field(default=None, ge=0, le=1)


class Term(_Model):
    """The months the amounts cover (e.g. a 5-year contract)."""

    start: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    months: int = Field(gt=0, le=600)


class CostsConfig(_Model):
    """The ``costs:`` section of the configuration."""

    #: the period the item amounts cover; without it they are amounts per calendar year.
    term: Term | None = None
    #: what the members paid for the same scope before sharing, for the savings line.
    baseline_yen: int | None = Field(default=None, ge=0)
    population_weight: float = Field(default=1.0, ge=0, le=1)
    #: how the measured resources combine into one resource share.
    resource_weights: dict[str, float] = {"repository_bytes": 0.6, "backup_seconds": 0.2, "drill_seconds": 0.2}
    items: list[CostItem] = Field(min_length=1)

    @field_validator("resource_weights")
    @classmethod
    def _known_measures(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if name not in MEASURES:
                raise ValueError(f"unknown measure '{name}' (known: {', '.join(MEASURES)})")
            if weight < 0:
                raise ValueError(f"weight of {name} must not be negative")
        if not any(weights.values()):
            raise ValueError("at least one measure needs a positive weight")
        return weights

    @model_validator(mode="after")
    def _unique_categories(self) -> CostsConfig:
        seen = [item.category for item in self.items]
        dupes = sorted({c for c in seen if seen.count(c) > 1})
        if dupes:
            raise ValueError(f"category listed twice: {', '.join(dupes)}")
        return self


def parse_costs(raw: Mapping[str, Any], source: str = "<config>") -> CostsConfig:
    """Validate the ``costs:`` section; errors name the file and the field path."""
    if not raw:
        raise ConfigError(f"{source}: costs: section missing or empty")
    try:
        return CostsConfig.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in ("costs", *first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {loc}: {first['msg'].removeprefix('Value error, ')}{more}") from None


@dataclass(frozen=True)
class TenantUsage:
    """Measured resource use of one tenant over the period being split."""

    repository_bytes: int = 0
    backup_seconds: float = 0.0
    drill_seconds: float = 0.0


@dataclass(frozen=True)
class TenantShare:
    tenant: str
    name: str
    population: int
    population_share: float
    resource_share: float
    yen: int
    by_category: dict[str, int]
    usage: TenantUsage


@dataclass(frozen=True)
class CostSplit:
    total_yen: int
    period: str | None
    resource_basis: str
    tenants: list[TenantShare]
    categories: list[dict[str, Any]] = field(default_factory=list)
    baseline_yen: int | None = None
    saving_yen: int | None = None
    saving_pct: float | None = None


def month_portion(amount: int, months: int, index: int) -> int:
    """Month ``index`` (0-based) of ``amount`` spread over ``months``; the months sum to ``amount``."""
    if not 0 <= index < months:
        raise ValueError("month outside the term")
    return amount * (index + 1) // months - amount * index // months


def _month_index(costs: CostsConfig, period: str) -> tuple[int, int]:
    """(index, months) of ``period`` (YYYY-MM) in the term, or in its calendar year."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise UsageError(f"invalid period '{period}': use YYYY-MM")
    year, month = (int(x) for x in period.split("-"))
    if costs.term is None:
        return month - 1, 12
    start_year, start_month = (int(x) for x in costs.term.start.split("-"))
    index = (year - start_year) * 12 + (month - start_month)
    if not 0 <= index < costs.term.months:
        raise UsageError(f"period {period} is outside the cost term ({costs.term.start}, {costs.term.months} months)")
    return index, costs.term.months


def resource_shares(
    tenants: Sequence[str], usage: Mapping[str, TenantUsage], weights: Mapping[str, float]
) -> dict[str, Fraction] | None:
    """Each tenant's weighted share of measured use, or None when nothing was measured."""
    combined = {t: Fraction(0) for t in tenants}
    used_weight = Fraction(0)
    for measure in MEASURES:
        weight = Fraction(str(weights.get(measure, 0)))
        values = {t: Fraction(str(getattr(usage.get(t, TenantUsage()), measure))) for t in tenants}
        total = sum(values.values(), Fraction(0))
        if weight <= 0 or total <= 0:
            continue  # an unmeasured resource must not make everyone's share zero
        used_weight += weight
        for t in tenants:
            combined[t] += weight * values[t] / total
    if used_weight == 0:
        return None
    return {t: share / used_weight for t, share in combined.items()}


def split_costs(
    costs: CostsConfig,
    tenants: Mapping[str, tuple[str, int]],
    usage: Mapping[str, TenantUsage] | None = None,
    *,
    period: str | None = None,
) -> CostSplit:
    """Split the configured costs among ``tenants`` ({id: (name, population)}, config order).

    Without measurements, the resource part of every category follows population, and
    ``resource_basis`` says so.
    """
    if not tenants:
        raise ConfigError("no tenants to split the costs among")
    ids = list(tenants)
    usage = usage or {}
    population_total = sum(pop for _, pop in tenants.values())
    pop_share = {t: Fraction(tenants[t][1], population_total) for t in ids}
    measured = resource_shares(ids, usage, costs.resource_weights)
    res_share = measured if measured is not None else pop_share
    index, months = _month_index(costs, period) if period else (0, 1)

    def amount(yen: int) -> int:
        return month_portion(yen, months, index) if period else yen

    categories: list[dict[str, Any]] = []
    quotas: list[list[Fraction]] = [[] for _ in ids]
    for item in costs.items:
        pw = Fraction(str(item.population_weight if item.population_weight is not None else costs.population_weight))
        yen = amount(item.yen)
        weights = [pw * pop_share[t] + (1 - pw) * res_share[t] for t in ids]
        weight_sum = sum(weights, Fraction(0))
        for row, w in zip(quotas, weights, strict=True):
            row.append(yen * w / weight_sum)
        categories.append({"category": item.category, "yen": yen, "population_weight": float(pw)})
    cells = controlled_rounding(quotas, [c["yen"] for c in categories])
    by_category = {t: {c["category"]: cells[i][j] for j, c in enumerate(categories)} for i, t in enumerate(ids)}
    total = sum(c["yen"] for c in categories)
    baseline = amount(costs.baseline_yen) if costs.baseline_yen is not None else None
    shares = [
        TenantShare(
            tenant=t,
            name=tenants[t][0],
            population=tenants[t][1],
            population_share=round(float(pop_share[t]), 6),
            resource_share=round(float(res_share[t]), 6),
            yen=sum(by_category[t].values()),
            by_category=by_category[t],
            usage=usage.get(t, TenantUsage()),
        )
        for t in ids
    ]
    return CostSplit(
        total_yen=total,
        period=period,
        resource_basis="measured" if measured is not None else "population (no resource use measured)",
        tenants=shares,
        categories=categories,
        baseline_yen=baseline,
        saving_yen=baseline - total if baseline is not None else None,
        saving_pct=round(100 * (baseline - total) / baseline, 1) if baseline else None,
    )
