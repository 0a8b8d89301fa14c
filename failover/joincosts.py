"""What a late joiner (後乗り) does to the shared contract: its new total and every member's new share.

The seed's 割り勘効果 is why a consortium takes joiners at all: the contract grows by less than
the joiner brings, so every member's share falls. How much it grows is the contract's own terms,
per category (``costs.after.items[].per_member_yen`` / ``per_resident_yen``: a 通信回線 per town,
帳票 per resident); a contract that prices no joining keeps its total and says so. Pure: the
``costs:`` section, both memberships and the measured use go in; yen come out.

:func:`costs_text` writes the result into the configuration a reviewer signs off: each category's
new ``yen`` in place, and the members' shares before and after as comments above the items, so
the diff the 協議会 reviews shows what every town will pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dc.config import Consortium
from dc.cost import CostsConfig, TenantUsage, parse_costs
from dc.costsplit import CostSplit, split_costs
from dc.proration import FiscalYearSplit

BASIS_PRICED = "costs.after.items: per_member_yen + per_resident_yen x the joiner's population, over the term"
BASIS_UNPRICED = (
    "the contract prices no joining (costs.after.items[].per_member_yen / per_resident_yen): total unchanged"
)


@dataclass(frozen=True)
class ContractChange:
    """The shared contract now and with the joiner, and every member's bill and share in both."""

    now_yen: int
    with_joiner_yen: int
    added_yen: int
    priced: bool
    basis: str
    #: per category: {category, now_yen, with_joiner_yen, per_member_yen, per_resident_yen}
    items: list[dict[str, Any]]
    #: per member and the joiner: yen and shares now and with the joiner
    bills: list[dict[str, Any]]
    #: the contract with the joiner (what ``tenant join`` writes)
    joined: CostsConfig


def _share(yen: int, total: int) -> float:
    return round(yen / total, 6) if total else 0.0


def contract_change(
    before: Consortium, after: Consortium, population: int, usage: Mapping[str, TenantUsage], source: str
) -> ContractChange | None:
    """The contract and the bills once the joiner (the tenant ``after`` adds, of ``population``) is in."""
    if not before.costs:
        return None
    costs = parse_costs(before.costs, source)
    joined_costs = costs.with_joiner(population)
    now = split_costs(costs, {t: (x.name, x.population) for t, x in before.tenants.items()}, usage)
    joined = split_costs(joined_costs, {t: (x.name, x.population) for t, x in after.tenants.items()}, usage)
    return ContractChange(
        now_yen=now.total_yen,
        with_joiner_yen=joined.total_yen,
        added_yen=joined.total_yen - now.total_yen,
        priced=costs.prices_joining,
        basis=BASIS_PRICED if costs.prices_joining else BASIS_UNPRICED,
        items=[
            {
                "category": a.category,
                "now_yen": a.yen,
                "with_joiner_yen": b.yen,
                "per_member_yen": a.per_member_yen,
                "per_resident_yen": a.per_resident_yen,
            }
            for a, b in zip(costs.after.items, joined_costs.after.items, strict=True)
        ],
        bills=_bills(now, joined),
        joined=joined_costs,
    )


def _bills(now: CostSplit, joined: CostSplit) -> list[dict[str, Any]]:
    was = {t.tenant: t for t in now.tenants}
    bills = []
    for t in joined.tenants:
        old = was.get(t.tenant)
        bills.append(
            {
                "tenant": t.tenant,
                "name": t.name,
                "now_yen": old.yen if old else None,
                "with_joiner_yen": t.yen,
                "change_yen": t.yen - old.yen if old else None,
                "share_now": _share(old.yen, now.total_yen) if old else None,
                "share_with_joiner": _share(t.yen, joined.total_yen),
                "population_share_now": old.population_share if old else None,
                "population_share_with_joiner": t.population_share,
                "equal_share_now": old.equal_share if old else None,
                "equal_share_with_joiner": t.equal_share,
            }
        )
    return bills


def _yen_nodes(root: yaml.Node) -> tuple[int, list[yaml.ScalarNode]]:
    """The line where ``costs.after.items`` starts and the ``yen`` scalar of each of its entries."""
    node: yaml.Node | None = root
    for key in ("costs", "after", "items"):
        if not isinstance(node, yaml.MappingNode):
            return 0, []
        node = next((v for k, v in node.value if k.value == key), None)
    if not isinstance(node, yaml.SequenceNode):
        return 0, []
    found = []
    for item in node.value:
        if isinstance(item, yaml.MappingNode):
            found += [v for k, v in item.value if k.value == "yen" and isinstance(v, yaml.ScalarNode)]
    return node.start_mark.line, found


def comment_lines(change: ContractChange, name: str, lg_code: str, year: FiscalYearSplit | None = None) -> list[str]:
    """The reviewer's record of the change, in Japanese (the 協議会's language), one member a line;
    with ``year``, each town's bill in the 年度 it joins, by its months in it."""
    lines = [f"後乗り {name} ({lg_code}): 契約総額 {change.now_yen:,}円 → {change.with_joiner_yen:,}円"]
    for b in change.bills:
        now = f"{b['now_yen']:,}円 ({b['share_now']:.2%})" if b["now_yen"] is not None else "新規"
        lines.append(f"  {b['name']}: {now} → {b['with_joiner_yen']:,}円 ({b['share_with_joiner']:.2%})")
    if year is not None:
        lines.append(f"{year.fiscal_year}年度 (月割り、加入月から負担): 契約額 {year.total_yen:,}円")
        for t in year.tenants:
            since = f"{t.billed_from:%Y年%m月}から{t.months}か月" if t.billed_from else "負担なし"
            was = f" (加入がなければ {t.without_joiners_yen:,}円)" if t.without_joiners_yen is not None else ""
            lines.append(f"  {t.name}: {since} {t.yen:,}円{was}")
    return lines


def costs_text(text: str, change: ContractChange, name: str, lg_code: str, year: FiscalYearSplit | None = None) -> str:
    """``text`` with each ``costs.after.items`` yen set to the joined contract's, the shares as comments.

    Only the yen scalars change (in place, comments kept). A file whose items cannot be matched one
    to one with the contract's is returned as it is; the caller checks what it writes against the plan.
    """
    root = yaml.compose(text)
    first, nodes = _yen_nodes(root) if root is not None else (0, [])
    if len(nodes) != len(change.joined.after.items):
        return text
    lines = text.splitlines()
    pairs = zip(nodes, change.joined.after.items, strict=True)
    for node, item in sorted(
        pairs, key=lambda pair: (pair[0].start_mark.line, pair[0].start_mark.column), reverse=True
    ):
        start, end = node.start_mark, node.end_mark
        if start.line != end.line:
            return text  # a multi-line scalar for a number: leave the file as it is
        line = lines[start.line]
        lines[start.line] = line[: start.column] + str(item.yen) + line[end.column :]
    indent = " " * (len(lines[first]) - len(lines[first].lstrip()))
    lines[first:first] = [f"{indent}# {c}" for c in comment_lines(change, name, lg_code, year)]
    return "\n".join(lines) + "\n"
