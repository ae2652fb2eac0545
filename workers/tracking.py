"""Jobs for results: the stop rule after conversions arrive, and its periodic sweep (spend grows too)."""

from __future__ import annotations

import logging

from marketplace.jobs import enqueue
from workers import job

log = logging.getLogger(__name__)


@job
def apply_stop_rule(brief_id: str) -> list[str]:
    """Pause the brief's groups whose CPA is over 3× target after the minimum spend; the ids paused now."""
    from marketplace.tracking import service

    return service.apply_stop_rule([brief_id])


def enqueue_stop_rule(brief_ids: list[str]) -> None:
    """After conversions are committed: judge their briefs again in the background."""
    for brief_id in brief_ids:
        try:
            enqueue(apply_stop_rule, brief_id, retry_intervals=[10, 60])
        except Exception:  # the periodic sweep catches up; the conversions are stored either way
            log.exception("could not enqueue the stop rule for %s", brief_id)


@job
def sweep_stop_rule() -> list[str]:
    """Every running brief with a target CPA: approvals raise spend (and CPA) without any new conversion."""
    from marketplace.tracking import service

    brief_ids = service.stop_rule_candidates()
    paused: list[str] = []
    for start in range(0, len(brief_ids), 200):  # bounded statements however many briefs run
        paused += service.apply_stop_rule(brief_ids[start:start + 200])
    return paused


@job
def create_click_partitions() -> list[str]:
    """This month's and the next months' click partitions, made ahead of their clicks (PostgreSQL only)."""
    from marketplace.tracking import partitions

    return partitions.ensure_partitions()


@job
def fold_click_hours() -> int:
    """Closed UTC days' hourly click counts folded into one row a day (reports read fewer rows)."""
    from marketplace.tracking import rollup

    return rollup.fold_closed_days()
