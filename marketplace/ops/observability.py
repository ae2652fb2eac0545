"""Structured request logs (never a secret in them) and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

from marketplace.db.clock import utcnow

_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=_REGISTRY)
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["route"], registry=_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Anything that looks like one of our secrets or Stripe's is masked before a line is written.
_SECRET_RE = re.compile(r"\b(mk_|mt_|sk_(?:test|live)_|rk_(?:test|live)_|whsec_|pi_\w+_secret_)[A-Za-z0-9_\-]+")


def registry() -> CollectorRegistry:
    """Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker's samples are merged."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return _REGISTRY


def redact(text: str) -> str:
    return _SECRET_RE.sub(lambda m: m.group(1) + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key in ("request_id", "method", "path", "status", "duration_ms", "principal"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)


access_log = logging.getLogger("marketplace.access")


def _start():
    g.started = time.perf_counter()
    g.received_at = utcnow()  # before any hook reads the body (idempotency reads uploads whole)
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex


def _finish(response):
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule else "unmatched"
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    LATENCY.labels(route).observe(elapsed)
    response.headers["X-Request-Id"] = g.get("request_id", "")
    principal = g.get("principal")
    access_log.info(
        "%s %s %s", request.method, request.path, response.status_code,
        extra={
            "request_id": g.get("request_id"), "method": request.method, "path": request.path,
            "status": response.status_code, "duration_ms": round(elapsed * 1000, 2),
            "principal": f"{principal.role}:{principal.id}" if principal else None,
        },
    )
    return response


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
