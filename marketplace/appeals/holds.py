"""What a closed brief keeps in escrow for appeals: the value of its rejections still inside their
appeal window (and not upheld), so that an overturn on a closed brief can be paid. When the window
ends the money is no longer kept, and the refund sweep (briefs.lifecycle.refund_released_escrow,
a scheduled job) gives it back."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.appeals.models import Appeal
from marketplace.briefs.models import Brief, fee_for
from marketplace.extensions import db
from marketplace.proofs.models import Submission

APPEALABLE = ("rejected", "auto_rejected")


def held_cents(brief: Brief, now: datetime, *, exclude: str | None = None) -> int:
    """The value (price plus fee) of the brief's rejections still appealable at `now`, in one
    grouped statement; `exclude` leaves one submission out (the overturn being paid)."""
    decided = sa.exists().where(Appeal.submission_id == Submission.id, Appeal.status != "open")
    query = (sa.select(Submission.group_id, sa.func.count())
             .where(Submission.brief_id == brief.id, Submission.status.in_(APPEALABLE),
                    Submission.appealable_until > now, ~decided)
             .group_by(Submission.group_id))
    if exclude is not None:
        query = query.where(Submission.id != exclude)
    cost = {g.id: g.unit_price_cents + fee_for(g.unit_price_cents, brief.fee_bps) for g in brief.task_groups}
    return sum(cost[group_id] * n for group_id, n in db.session.execute(query).all())
