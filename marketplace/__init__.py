"""The marketplace service: create_app builds it."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

REPO_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """The application factory: settings from the environment, overridden by `config`."""
    from marketplace import cli, models, stripe_events  # noqa: F401 - models registers every table
    from marketplace.auth import forget_principal
    from marketplace.config import check as check_config
    from marketplace.config import from_environment
    from marketplace.extensions import db, migrate
    from marketplace.http import guards, idempotency, no_store, problems
    from marketplace.http.inputs import JSONProvider, Request
    from marketplace.http.openapi import ErrorResponses, MarketplaceApi
    from marketplace.ops import observability
    from marketplace.ops.routes import bp as ops_bp
    from marketplace.routes import register_blueprints
    from marketplace.web.routes import bp as web_bp

    instance = os.environ.get("MARKETPLACE_INSTANCE_PATH") or str(REPO_ROOT / "instance")
    app = Flask(__name__, instance_path=instance)
    app.json = JSONProvider(app)
    app.request_class = Request
    app.config.update(from_environment(Path(app.instance_path)))
    app.config.update(config or {})
    check_config(app.config)
    if app.config.get("TRUSTED_PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # remote_addr becomes the address the last TRUSTED_PROXY_COUNT proxies were asked by.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXY_COUNT"])
    observability.configure_logging(app.config["LOG_LEVEL"])

    db.init_app(app)
    from marketplace.tracking.partitions import declared_schema_object

    migrate.init_app(app, db, directory=str(REPO_ROOT / "migrations"), include_object=declared_schema_object)
    api = MarketplaceApi(app, spec_kwargs={"servers": [{"url": "/"}], "extra_plugins": [ErrorResponses(app)]})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "Brand/admin API key or worker token"}
    )
    register_blueprints(api)
    app.extensions["stripe_events"] = stripe_events.HANDLERS
    app.register_blueprint(ops_bp)
    app.register_blueprint(web_bp)

    app.before_request(forget_principal)
    observability.register(app)
    guards.register(app)
    idempotency.register(app)
    no_store.register(app)
    problems.register(app)
    cli.register(app)
    return app
