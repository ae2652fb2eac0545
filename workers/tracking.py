"""Jobs for results: the stop rule after conversions arrive, and its periodic sweep (spend grows too)."""

from __future__ import annotations

from workers import job


@job
def apply_stop_rule(brief_id: str) -> list[str]:
    """Pause the brief's groups whose CPA is over 3× target after the minimum spend; the ids paused now."""
    from marketplace.tracking import service

    return service.apply_stop_rule([brief_id])


@job
def sweep_stop_rule() -> list[str]:
    """Every running brief with a target CPA: approvals raise spend (and CPA) without any new conversion."""
    from marketplace.tracking import service

    brief_ids = service.stop_rule_candidates()
    paused: list[str] = []
    for start in range(0, len(brief_ids), 200):  # bounded statements however many briefs run
        paused += service.apply_stop_rule(brief_ids[start:start + 200])
    return paused
