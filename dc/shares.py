"""One month's or one item's shares: who pays which part of an amount under the agreed rule.

Shared by the term's split (dc/costsplit.py) and the fiscal year's by months (dc/proration.py).
Exact fractions; rounding to yen is the caller's (dc/apportion.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from dc.cost import MEASURES, Rule, TenantUsage


def portion(amount: int, parts: int, index: int) -> int:
    """Part ``index`` (0-based) of ``amount`` cut in ``parts`` near-equal integers that sum to ``amount``."""
    if not 0 <= index < parts:
        raise ValueError("index outside the parts")
    return amount * (index + 1) // parts - amount * index // parts


def resource_shares(
    tenants: Sequence[str], usage: Mapping[str, TenantUsage], weights: Mapping[str, float]
) -> dict[str, Fraction] | None:
    """Each tenant's weighted share of measured use, or None when nothing was measured.

    Only :data:`dc.cost.MEASURES` count: drill time never makes a bill larger.
    """
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


def rule_weights(
    rule: Rule, ids: Sequence[str], pop: Mapping[str, Fraction], res: Mapping[str, Fraction]
) -> list[Fraction]:
    e, p, u = (Fraction(str(x)) for x in (rule.equal, rule.population, rule.usage))
    return [(e / len(ids) + p * pop[t] + u * res[t]) / (e + p + u) for t in ids]
