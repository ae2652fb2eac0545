"""The production app plus bare endpoints used only by benchmarks as a baseline (gunicorn bench.bare_app:app)."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from marketplace import create_app as create_marketplace_app

bare = Blueprint("bench_bare", __name__)


@bare.get("/bench/bare")
def bare_read():
    """What a JSON endpoint costs in this app with no auth, no database and no schema."""
    return {"id": "brief_0123456789abcdef0123456789abcdef", "status": "live", "budget_cents": 50000}


@bare.post("/bench/bare")
def bare_echo():
    """A JSON body parsed and echoed back: the floor under any creating POST."""
    return request.get_json(), 201


@bare.get("/bench/bare-redirect/<string:code>")
def bare_redirect(code):
    """A 302 built like a tracked link's (same URL code) with no database: the floor under GET /t/{code}."""
    from flask import redirect

    from marketplace.tracking.service import landing_url

    return redirect(landing_url("https://shop.example.com/spring?ref=x", kind="caption", brief_id="brief_bench",
                                task_id=code, click_id="clk_bench"), code=302)


def create_app(config: dict | None = None) -> Flask:
    app = create_marketplace_app(config)
    app.register_blueprint(bare)
    return app


def __getattr__(name: str) -> Flask:
    """`bench.bare_app:app` for gunicorn, built on first access so importing this module builds nothing."""
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(name)
