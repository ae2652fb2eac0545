"""/healthz, /readyz, /metrics and /docs."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from marketplace.appeals import service as appeals
from marketplace.extensions import db
from marketplace.http import ratelimit
from marketplace.http.problems import problem
from marketplace.jobs import redis_connection
from marketplace.ops import reference
from marketplace.ops.observability import registry

bp = Blueprint("ops", __name__, template_folder="templates")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure to reach the database means not ready
        db.session.rollback()
        checks["database"] = f"unreachable: {type(exc).__name__}"
    redis = redis_connection()
    redis_reachable = None
    if redis is None:
        checks["redis"] = "not configured (jobs run in-process)"
    else:
        try:
            redis.ping()
            checks["redis"] = "ok"
            redis_reachable = True
        except Exception as exc:  # noqa: BLE001 - any Redis failure means not ready
            checks["redis"] = f"unreachable: {type(exc).__name__}"
            redis_reachable = False
    from marketplace.proofs.storage import StorageUnavailable, storage

    try:
        store = storage()
        store.ping()
        checks["storage"] = f"ok ({store.where})"
    except StorageUnavailable as exc:
        checks["storage"] = f"unreachable: {exc}"
    checks["rate_limits"] = ratelimit.where_kept(current_app, redis_reachable)
    unreachable = {k: v for k, v in checks.items() if v.startswith("unreachable")}
    if unreachable:
        detail = "A dependency is unreachable: " + ", ".join(f"{k} {v}" for k, v in unreachable.items())
        if checks["rate_limits"].startswith("per-process fallback"):
            detail += "; rate limits are kept per process until Redis is back"
        return problem(503, detail, slug="not-ready", extra={"checks": checks})
    return {"status": "ready", "checks": checks}


@bp.get("/metrics")
def metrics():
    # content_type, not mimetype: Flask would append a second charset to one that has it.
    return Response(generate_latest(registry()) + _queue_gauges(), content_type=CONTENT_TYPE_LATEST)


def _queue_gauges() -> bytes:
    """Gauges read from the database at scrape time (the same for every process), in a registry
    of their own made per scrape; none when the database cannot be read (readyz says why)."""
    try:
        open_count, oldest_age = appeals.open_queue_stats()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return b""
    finally:
        db.session.rollback()  # the read transaction ends with the scrape
    live = CollectorRegistry()
    Gauge("appeals_open", "Appeals waiting for a decision", registry=live).set(open_count)
    Gauge("appeals_oldest_open_age_seconds", "How long the oldest open appeal has waited (0 when none)",
          registry=live).set(oldest_age)
    return generate_latest(live)


@bp.get("/docs")
def docs():
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].documented_spec()
    return render_template("docs.html", spec=spec, operations=reference.operations(spec))
