"""The recovery plan: which systems come back, in which order, and what they must meet.

Ordering follows VMware SRM's model: priority groups (here, the system's tier from the
municipality's BIA, ICT-BCP ステップ11) run one after another; inside a group systems run
in parallel except where ``depends_on`` says one needs another first. A dependency must be
in the same or an earlier tier — a 住民基本台帳 (tier 1) that waited on a tier-3 system would
make the tiers meaningless — and a cycle can never be satisfied; both are configuration
errors. Pure functions: no I/O, tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dc.config import Consortium
from dc.errors import N_, ConfigError, UsageError
from failover.errors import NotDrillable


@dataclass(frozen=True)
class PlanStep:
    system: str
    tenant: str
    business: str
    tier: int
    rpo: int | None
    rto: int | None
    depends_on: tuple[str, ...]
    source_kind: str
    #: pulled in only because a selected system depends on it.
    as_dependency: bool = False


@dataclass(frozen=True)
class RecoveryPlan:
    #: priority groups in execution order; each lists its systems dependencies-first.
    groups: tuple[tuple[PlanStep, ...], ...]

    @property
    def steps(self) -> list[PlanStep]:
        return [step for group in self.groups for step in group]

    def step(self, system: str) -> PlanStep:
        return next(s for s in self.steps if s.system == system)

    @property
    def tenants(self) -> list[str]:
        return sorted({s.tenant for s in self.steps})


def _closure(config: Consortium, selected: Iterable[str]) -> tuple[set[str], set[str]]:
    wanted = set(selected)
    pulled: set[str] = set()
    stack = list(wanted)
    while stack:
        for dep in config.systems[stack.pop()].depends_on:
            if dep not in wanted and dep not in pulled:
                pulled.add(dep)
                stack.append(dep)
    return wanted, pulled


def select_systems(config: Consortium, *, tenant: str | None = None, systems: Iterable[str] = ()) -> list[str]:
    """The systems a run covers: all, one tenant's, or the named ones (all must exist)."""
    names = list(systems)
    if tenant is not None and tenant not in config.tenants:
        raise UsageError(
            N_("unknown tenant '{tenant}' (known: {tenants})"), tenant=tenant, tenants=", ".join(config.tenants)
        )
    for name in names:
        system = config.system(name)
        if tenant is not None and system.tenant != tenant:
            raise UsageError(
                N_("system '{name}' belongs to tenant '{tenant}', not '{tenant2}'"),
                name=name,
                tenant=system.tenant,
                tenant2=tenant,
            )
    if names:
        return names
    chosen = [name for name, s in config.systems.items() if tenant is None or s.tenant == tenant]
    if not chosen:
        raise UsageError(N_("tenant '{tenant}' has no systems to recover"), tenant=tenant)
    return chosen


def build_plan(config: Consortium, selected: Iterable[str] | None = None) -> RecoveryPlan:
    """Group the selected systems (default: all) and their dependencies by tier, in dependency order."""
    wanted, pulled = _closure(config, config.systems if selected is None else selected)
    members = wanted | pulled
    for name in sorted(members):
        system = config.systems[name]
        for dep in system.depends_on:
            if config.systems[dep].tier > system.tier:
                raise ConfigError(
                    N_(
                        "systems.{name}.depends_on: '{dep}' is tier {tier} but '{name}' is tier {tier2}; a "
                        "dependency must be in the same or an earlier tier"
                    ),
                    name=name,
                    dep=dep,
                    tier=config.systems[dep].tier,
                    tier2=system.tier,
                )
    groups = []
    for tier in sorted({config.systems[n].tier for n in members}):
        in_tier = sorted(n for n in members if config.systems[n].tier == tier)
        groups.append(tuple(_step(config, n, n in pulled) for n in _dependency_order(config, in_tier)))
    return RecoveryPlan(tuple(groups))


def _step(config: Consortium, name: str, as_dependency: bool) -> PlanStep:
    s = config.systems[name]
    return PlanStep(name, s.tenant, s.business, s.tier, s.rpo, s.rto, s.depends_on, s.source.kind, as_dependency)


def _dependency_order(config: Consortium, names: list[str]) -> list[str]:
    """Kahn's algorithm inside one tier, ties broken by name so plans are stable."""
    inside = set(names)
    waiting = {n: {d for d in config.systems[n].depends_on if d in inside} for n in names}
    ordered: list[str] = []
    while waiting:
        ready = sorted(n for n, deps in waiting.items() if not deps)
        if not ready:
            cycle = _find_cycle(waiting)
            raise ConfigError(
                N_("systems.{cycle}.depends_on: dependency cycle {cycle2}"), cycle=cycle[0], cycle2=" → ".join(cycle)
            )
        for name in ready:
            ordered.append(name)
            del waiting[name]
        for deps in waiting.values():
            deps.difference_update(ready)
    return ordered


def _find_cycle(waiting: dict[str, set[str]]) -> list[str]:
    start = min(waiting)
    path = [start]
    while True:
        nxt = min(waiting[path[-1]])
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def require_targets(plan: RecoveryPlan) -> None:
    """Refuse a plan with a system that has no RTO or RPO: its drill could never pass or fail."""
    missing = [s for s in plan.steps if s.rto is None or s.rpo is None]
    if missing:
        first = missing[0]
        what = " and ".join(n for n, v in (("rto", first.rto), ("rpo", first.rpo)) if v is None)
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotDrillable(
            N_(
                "system '{system}' has no {what} target{more}: set them from the municipality's "
                "business-impact analysis (ICT-BCP 様式15) before drilling it"
            ),
            system=first.system,
            what=what,
            more=more,
        )
