"""The ``costs:`` section: what the members paid before sharing, what the shared contract costs,
and the rule of the 協定書 that splits it (割り勘).

The reference consortium (いばらき自治体クラウド) compared 41,700万円 before with 28,700万円 after
(31% less). Before and after are different lists — each town's own contracts (パッケージシステム料,
データセンター利用料, 運用・保守費, 帳票アウトソーシング) against one shared contract (ソフトウェア費,
ハードウェア費, 運用・保守費, 帳票アウトソーシング費, 通信回線費) — so they are two inputs here: before
per town and category (a town's saving is against its own baseline), after per category.

The split rule mixes 均等割 (an equal share: every member needs the whole system whatever its
size), 人口割 (population, the usual basis between municipalities) and, optionally, 利用量割 on
measured use — repository bytes and backup time, never drill time: drills are what every member
should want more of, so they are never billed. Subsidies (LASDEC 自治体クラウドモデル団体支援事業)
are negative items split by their own rule. The arithmetic is in dc/costsplit.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dc.errors import N_, ConfigError, Message
from dc.validation import validation_message

#: what 利用量割 may be measured on; drill time is measured (dc/usage.py) but never billed
MEASURES = ("repository_bytes", "backup_seconds")
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    """Weights of 均等割, 人口割 and 利用量割; they are normalised, so 1/1/0 and 0.5/0.5/0 agree."""

    equal: float = Field(default=0.0, ge=0)
    population: float = Field(default=0.0, ge=0)
    usage: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> Rule:
        if not self.equal + self.population + self.usage:
            raise ValueError("a split rule needs a positive weight (equal, population or usage)")
        return self


class AfterItem(_Model):
    """One category of the shared contract, e.g. ハードウェア費, with its own rule if it has one."""

    category: str = Field(min_length=1)
    yen: int = Field(ge=0)
    rule: Rule | None = None
    #: what the contract adds over the term for each town joining late (後乗り), e.g. its own
    #: 通信回線 or a package licence; 0 for what the members already share whole (a server room)
    per_member_yen: int = Field(default=0, ge=0)
    #: what it adds per resident of a joining town, e.g. 帳票 printed and mailed per resident
    per_resident_yen: int = Field(default=0, ge=0)


class Subsidy(_Model):
    """A grant that lowers the members' bills: a negative item in the projection's ``year``."""

    name: str = Field(min_length=1)
    yen: int = Field(gt=0)
    #: the projection year it is received in (1 = the first year of the term)
    year: int = Field(default=1, ge=1, le=50)
    rule: Rule = Rule(equal=1.0)


class GoLive(_Model):
    """A town's planned and actual start on the shared system: each month earlier saves the
    difference between its old and new monthly cost (the seed: 五霞町 H26.9 → H26.1, ~260万円)."""

    planned: str = Field(pattern=MONTH)
    actual: str = Field(pattern=MONTH)


class Joining(_Model):
    """What the 協定書 says of a town joining mid-term (後乗り), beyond that it pays from its first month."""

    #: a member's bill for a year never rises because a town joined during it: what the cap holds
    #: back falls on the joiners (dc/proration.py)
    members_never_pay_more: bool = False


class Term(_Model):
    """The period the before and after amounts cover, e.g. a 5-year contract from 2014-01."""

    start: str = Field(pattern=MONTH)
    years: int = Field(gt=0, le=50)


class Before(_Model):
    """現行: each town's own contracts for the same scope, per category, over the term."""

    categories: list[str] = Field(min_length=1)
    tenants: dict[str, dict[str, int]]

    @model_validator(mode="after")
    def _known_categories(self) -> Before:
        for tenant, amounts in self.tenants.items():
            for category, yen in amounts.items():
                if category not in self.categories:
                    raise ValueError(f"{tenant}: unknown category '{category}' (known: {', '.join(self.categories)})")
                if yen < 0:
                    raise ValueError(f"{tenant}.{category}: must not be negative")
        return self


class After(_Model):
    """クラウド移行後: the shared contract, per category, over the term."""

    items: list[AfterItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_categories(self) -> After:
        seen = [item.category for item in self.items]
        dupes = sorted({c for c in seen if seen.count(c) > 1})
        if dupes:
            raise ValueError(f"category listed twice: {', '.join(dupes)}")
        return self


class CostsConfig(_Model):
    """The ``costs:`` section of the configuration."""

    term: Term
    before: Before | None = None
    after: After
    rule: Rule
    #: how the measured resources combine into one 利用量 share
    usage_measures: dict[str, float] = {"repository_bytes": 0.8, "backup_seconds": 0.2}
    subsidies: list[Subsidy] = []
    go_live: dict[str, GoLive] = {}
    joining: Joining = Joining()
    projection_years: int = Field(default=10, ge=1, le=50)

    @model_validator(mode="before")
    @classmethod
    def _old_layout(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and "items" in raw:
            raise ValueError(
                "costs.items: the before and after lists are separate now: after.items, before.tenants "
                "(docs/cost-split.md)"
            )
        return raw

    @field_validator("usage_measures")
    @classmethod
    def _known_measures(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if name == "drill_seconds":
                raise ValueError("drill_seconds is never billed: every member should want more drills")
            if name not in MEASURES:
                raise ValueError(f"unknown measure '{name}' (known: {', '.join(MEASURES)})")
            if weight < 0:
                raise ValueError(f"weight of {name} must not be negative")
        if not any(weights.values()):
            raise ValueError("at least one measure needs a positive weight")
        return weights

    @property
    def after_total(self) -> int:
        return sum(item.yen for item in self.after.items)

    def rule_of(self, item: AfterItem) -> Rule:
        return item.rule or self.rule

    @property
    def prices_joining(self) -> bool:
        """Whether the contract says what a late joiner adds (else its total stays as it is)."""
        return any(item.per_member_yen or item.per_resident_yen for item in self.after.items)

    def with_joiner(self, population: int) -> CostsConfig:
        """The shared contract once a town of ``population`` has joined: each category grows by
        its per-member and per-resident terms, which stay for the next joiner."""
        items = [
            item.model_copy(update={"yen": item.yen + item.per_member_yen + item.per_resident_yen * population})
            for item in self.after.items
        ]
        return self.model_copy(update={"after": After(items=items)})


def parse_costs(
    raw: Mapping[str, Any], source: str = "<config>", tenants: Mapping[str, Any] | None = None
) -> CostsConfig:
    """Validate the ``costs:`` section; errors name the file and the field path.

    With ``tenants`` (the configuration's), a before amount or start date of an unknown town is an error.
    """
    if not raw:
        raise ConfigError(N_("{source}: costs: section missing or empty"), source=source)
    try:
        costs = CostsConfig.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in ("costs", *first["loc"]))
        more = Message(N_(" (and {count} more)"), count=exc.error_count() - 1) if exc.error_count() > 1 else ""
        message = validation_message(first)
        where = f"{source}: {loc}".replace("costs: costs.", "costs.")
        raise ConfigError(N_("{where}: {message_}{more}"), where=where, message_=message, more=more) from None
    if tenants is not None:
        named = [("before.tenants", t) for t in (costs.before.tenants if costs.before else {})]
        for where, tenant in [*named, *(("go_live", t) for t in costs.go_live)]:
            if tenant not in tenants:
                raise ConfigError(
                    N_("{source}: costs.{where}.{tenant}: unknown tenant (known: {tenants})"),
                    source=source,
                    where=where,
                    tenant=tenant,
                    tenants=", ".join(tenants),
                )
    return costs


@dataclass(frozen=True)
class TenantUsage:
    """Measured resource use of one tenant over the period being split (drill time is shown, never billed)."""

    repository_bytes: int = 0
    backup_seconds: float = 0.0
    drill_seconds: float = 0.0
