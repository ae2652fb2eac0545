"""Splitting a budget into whole pay-per-action units by shares (largest remainder, never over)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from marketplace.briefs.models import MAX_GROUP_QUANTITY, fee_for


@dataclass(frozen=True)
class MixItem:
    kind: str
    unit_price_cents: int
    share: int
    name: str | None = None


@dataclass(frozen=True)
class PlannedGroup:
    kind: str
    name: str | None
    unit_price_cents: int
    fee_per_task_cents: int
    quantity: int

    @property
    def unit_cost_cents(self) -> int:
        return self.unit_price_cents + self.fee_per_task_cents

    @property
    def cost_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @property
    def fee_cents(self) -> int:
        return self.quantity * self.fee_per_task_cents


def plan(budget_cents: int, mix: list[MixItem], fee_bps: int) -> list[PlannedGroup]:
    """Quantities per item so that spend follows the shares as closely as whole units allow.

    Each item's ideal spend is budget × share / Σshares, so its ideal quantity is that
    divided by the unit's full cost (price + fee). Everyone gets the floor; what is left
    goes one unit at a time to the largest fractional remainders (Hamilton's method), and
    the passes repeat while any unit still fits, so the plan is the largest that fits and
    never costs more than the budget. Exact rational arithmetic throughout. No group gets more
    than a brief accepts (MAX_GROUP_QUANTITY); what that leaves of the budget stays unspent.
    """
    total_shares = sum(item.share for item in mix)
    unit_costs = [item.unit_price_cents + fee_for(item.unit_price_cents, fee_bps) for item in mix]
    ideal = [Fraction(budget_cents * item.share, total_shares) / cost for item, cost in zip(mix, unit_costs, strict=True)]
    quantities = [min(int(q), MAX_GROUP_QUANTITY) for q in ideal]  # floor: ideal quantities are non-negative
    left = budget_cents - sum(q * c for q, c in zip(quantities, unit_costs, strict=True))

    # Largest remainder first; ties go to the item listed first.
    order = sorted(range(len(mix)), key=lambda i: (-(ideal[i] - quantities[i]), i))
    while True:
        added = False
        for i in order:
            if unit_costs[i] <= left and quantities[i] < MAX_GROUP_QUANTITY:
                quantities[i] += 1
                left -= unit_costs[i]
                added = True
        if not added:
            break

    return [
        PlannedGroup(item.kind, item.name, item.unit_price_cents, cost - item.unit_price_cents, quantity)
        for item, cost, quantity in zip(mix, unit_costs, quantities, strict=True)
    ]
