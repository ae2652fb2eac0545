"""The URL map: every domain's blueprint, registered in one place."""

from __future__ import annotations

from flask_smorest import Api

from marketplace.appeals.routes import blp as appeals
from marketplace.audit.routes import blp as audit
from marketplace.auth.routes import blp as accounts
from marketplace.bonuses.routes import blp as bonuses
from marketplace.briefs.routes import blp as briefs
from marketplace.cases.routes import blp as cases
from marketplace.events.routes import blp as events
from marketplace.notifications.routes import blp as notifications
from marketplace.payments.routes import blp as stripe_webhooks
from marketplace.payouts.routes import blp as payouts
from marketplace.proofs.routes import blp as proofs
from marketplace.reviews.routes import blp as reviews
from marketplace.tasks.routes import blp as tasks
from marketplace.tracking.routes import blp as tracking
from marketplace.webhooks.routes import blp as webhooks
from marketplace.workforce.routes import blp as workforce

API_BLUEPRINTS = (accounts, briefs, tasks, proofs, reviews, payouts, stripe_webhooks, tracking, cases,
                  notifications, workforce, audit, bonuses, events, webhooks, appeals)


def register_blueprints(api: Api) -> None:
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
