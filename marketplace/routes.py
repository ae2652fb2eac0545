"""The URL map: every domain's blueprint, registered in one place."""

from __future__ import annotations

import flask_smorest
from flask_smorest import Api

from marketplace.inputs import ArgumentsParser


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with marketplace.inputs. Every API route
    module makes its blueprint from this one: the parser is bound when a view is decorated."""

    ARGUMENTS_PARSER = ArgumentsParser()


def register_blueprints(api: Api) -> None:
    from marketplace.auth.routes import blp as accounts
    from marketplace.briefs.routes import blp as briefs
    from marketplace.payments.routes import blp as stripe_webhooks
    from marketplace.payouts.routes import blp as payouts
    from marketplace.proofs.routes import blp as proofs
    from marketplace.reviews.routes import blp as reviews
    from marketplace.tasks.routes import blp as tasks
    from marketplace.tracking.routes import blp as tracking

    for blueprint in (accounts, briefs, tasks, proofs, reviews, payouts, stripe_webhooks, tracking):
        api.register_blueprint(blueprint)
