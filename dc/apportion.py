"""Rounding money shares to whole yen so that every sum still adds up exactly.

Two problems, both pure: one amount among several parties (the largest-remainder method),
and a table of amounts (tenants x cost categories) whose tenant totals and category totals
must both be exact, with every cell within a yen of its exact quota ("controlled rounding",
which always exists for a two-way table: Bacharach 1966). The second is what an invoice
with a per-category breakdown needs: each tenant's bill is then the same as if the grand
total had been split at once, however the categories are cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from fractions import Fraction

Node = tuple[str, int]
"""A vertex of the rounding graph: ("r", row) or ("c", column)."""


def largest_remainder(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Integer parts of ``total`` proportional to ``weights`` that sum to ``total`` exactly.

    Each part is the floor of its exact quota; the yen left over go one each to the largest
    remainders, ties to the earlier entry (configuration order), so the result is stable.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    weight_sum = sum(weights, Fraction(0))
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    return round_quotas([total * w / weight_sum for w in weights], total)


def round_quotas(quotas: Sequence[Fraction], total: int) -> list[int]:
    """Largest-remainder rounding of exact ``quotas`` that add up to the integer ``total``."""
    parts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(parts)
    if not 0 <= left <= len(quotas):
        raise ValueError("quotas do not add up to the total")
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def controlled_rounding(quotas: Sequence[Sequence[Fraction]], column_totals: Sequence[int]) -> list[list[int]]:
    """Round a table of exact quotas to integers with exact row and column sums.

    Column ``c`` of ``quotas`` must add up to ``column_totals[c]``. Row totals are the
    largest-remainder rounding of the exact row sums; every cell ends up at the floor or
    the ceiling of its quota. The leftover units are placed by augmenting paths on the
    bipartite graph of cells with a fractional part (a small max-flow), which always
    succeeds because the fractional parts themselves are a feasible flow.
    """
    rows, cols = len(quotas), len(column_totals)
    grand = sum(column_totals)
    row_totals = round_quotas([sum(row, Fraction(0)) for row in quotas], grand)
    cells = [[q.numerator // q.denominator for q in row] for row in quotas]
    row_need = [row_totals[r] - sum(cells[r]) for r in range(rows)]
    col_need = [column_totals[c] - sum(cells[r][c] for r in range(rows)) for c in range(cols)]
    allowed = [[quotas[r][c] != cells[r][c] for c in range(cols)] for r in range(rows)]
    bumped = [[False] * cols for _ in range(rows)]
    for c in range(cols):
        for _ in range(col_need[c]):
            if not _augment(c, row_need, allowed, bumped):
                raise ValueError("no controlled rounding: quotas inconsistent with the totals")
    if any(row_need):
        raise ValueError("no controlled rounding: row totals not reached")
    return [[cells[r][c] + bumped[r][c] for c in range(cols)] for r in range(rows)]


def _augment(start_col: int, row_need: list[int], allowed: list[list[bool]], bumped: list[list[bool]]) -> bool:
    """Give one more unit to column ``start_col``: BFS for a row with spare need, re-routing as needed.

    Path: column -> (unbumped allowed cell) -> row; a row without spare need passes the unit
    on by un-bumping one of its cells in another column, which then needs a new row.
    """
    rows, cols = len(allowed), len(allowed[0]) if allowed else 0
    parent: dict[Node, Node | None] = {("c", start_col): None}
    queue = deque([("c", start_col)])
    while queue:
        kind, i = queue.popleft()
        if kind == "c":
            for r in range(rows):
                if allowed[r][i] and not bumped[r][i] and ("r", r) not in parent:
                    parent[("r", r)] = (kind, i)
                    if row_need[r] > 0:
                        _apply(("r", r), parent, bumped)
                        row_need[r] -= 1
                        return True
                    queue.append(("r", r))
        else:
            for c in range(cols):
                if bumped[i][c] and ("c", c) not in parent:
                    parent[("c", c)] = (kind, i)
                    queue.append(("c", c))
    return False


def _apply(node: Node, parent: dict[Node, Node | None], bumped: list[list[bool]]) -> None:
    """Flip the cells along the augmenting path ending at row ``node``."""
    current: Node | None = node
    while current is not None and parent[current] is not None:
        prev = parent[current]
        assert prev is not None
        if current[0] == "r":  # column prev -> row current: bump cell (current, prev)
            bumped[current[1]][prev[1]] = True
        else:  # row prev -> column current: un-bump cell (prev, current)
            bumped[prev[1]][current[1]] = False
        current = prev
