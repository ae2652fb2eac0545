"""Webhook endpoints (register, list, delete, rotate the secret) and the delivery of events to them:
one row per (event, endpoint), fanned out in the event's own transaction, each delivered by its own
RQ job, signed per Standard Webhooks, retried on the WEBHOOK_RETRY_SCHEDULE, every attempt kept.

Why a row per delivery and a lease: at least once. The job leases the row before it POSTs and
records the outcome after; a worker killed in between leaves a lease that lapses, and the sweep
(a periodic job) enqueues every due, unleased delivery again. One endpoint's slowness costs only
its own jobs their (short) timeout: no brand's deliveries wait behind another's.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
import standardwebhooks
from flask import current_app

from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import sql_new_id
from marketplace.errors import InvalidInput, NotFound
from marketplace.events.models import TYPES, Event
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.proofs.checks import link
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint

EVERY = "*"
ROTATION_OVERLAP = timedelta(hours=24)
SWEEP_BATCH = 500
MAX_ENDPOINTS = 20  # a brand's; more is a loop in someone's integration


def retry_schedule() -> list[int]:
    """WEBHOOK_RETRY_SCHEDULE: seconds before each retry (comma-separated)."""
    return [int(part) for part in str(current_app.config["WEBHOOK_RETRY_SCHEDULE"]).split(",") if part.strip()]


def _timeout() -> float:
    return float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])


def _new_secret() -> str:
    # Standard Webhooks secrets: whsec_ + base64 of 24 random bytes (192 bits).
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# --- endpoints ----------------------------------------------------------------------------------------


def _vet_url(url: str) -> str:
    try:
        parsed = link.parse_link(url)
    except link.LinkRejected as bad:
        raise InvalidInput.field("url", bad.detail) from None
    if parsed.scheme != "https" and not current_app.config["WEBHOOK_ALLOW_HTTP"]:
        raise InvalidInput.field("url", "Must be an https:// URL.")
    if parsed.ip is not None:
        reason = link.is_forbidden_address(parsed.ip, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"])
        if reason is not None:
            raise InvalidInput.field("url", f"{parsed.ip} is a forbidden address ({reason}).")
    return parsed.url


def _vet_types(types: list[str]) -> list[str]:
    if types == [EVERY]:
        return types
    unknown = [t for t in types if t not in TYPES]
    if not types or unknown:
        raise InvalidInput.field("events", f"Unknown event type(s) {', '.join(unknown) or '(none given)'}: give "
                                           f"[\"*\"] or some of {', '.join(TYPES)}.")
    return list(dict.fromkeys(types))


def create_endpoint(brand_id: str, *, url: str, events: list[str]) -> dict:
    """A new endpoint and its secret, shown this once."""
    url, events = _vet_url(url), _vet_types(events)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)
                              .where(WebhookEndpoint.brand_id == brand_id))
    if count >= MAX_ENDPOINTS:
        raise InvalidInput.field("url", f"At most {MAX_ENDPOINTS} endpoints a brand; delete one first.")
    endpoint = WebhookEndpoint(brand_id=brand_id, url=url, events=events, secret=_new_secret(), created_at=utcnow())
    db.session.add(endpoint)
    db.session.commit()
    return {**present(endpoint), "secret": endpoint.secret}


def _own(brand_id: str, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    query = sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.brand_id == brand_id)
    endpoint = db.session.scalar(query.with_for_update() if lock else query)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def list_endpoints(brand_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    rows, next_cursor = page(sa.select(WebhookEndpoint).where(WebhookEndpoint.brand_id == brand_id),
                             WebhookEndpoint, limit=limit, cursor=cursor)
    return [present(row) for row in rows], next_cursor


def delete_endpoint(brand_id: str, endpoint_id: str) -> None:
    """Gone, with its deliveries (ON DELETE CASCADE): nothing more is sent to it."""
    db.session.delete(_own(brand_id, endpoint_id, lock=True))
    db.session.commit()


def rotate_secret(brand_id: str, endpoint_id: str) -> dict:
    """A new secret, shown this once; the old one keeps signing alongside it for 24 hours, so the
    brand can deploy the new one without missing a delivery."""
    endpoint = _own(brand_id, endpoint_id, lock=True)
    endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, utcnow() + ROTATION_OVERLAP
    endpoint.secret = _new_secret()
    db.session.commit()
    return {**present(endpoint), "secret": endpoint.secret}


def present(row: WebhookEndpoint) -> dict:
    return {"id": row.id, "url": row.url, "events": row.events, "created_at": row.created_at,
            "disabled_at": row.disabled_at,
            "previous_secret_expires_at": _live_previous_expiry(row, utcnow())}


def _live_previous_expiry(row: WebhookEndpoint, now: datetime) -> datetime | None:
    expires = row.previous_secret_expires_at
    return expires if row.previous_secret and expires and as_utc(expires) > now else None


# --- fan-out, in the event's transaction --------------------------------------------------------------


def fan_out(type: str, created_at: datetime) -> int:
    """Deliveries for the events of `type` just written at `created_at` (one statement of
    marketplace.events writes them all with one time), to every enabled endpoint of their brand
    that wants the type: in the caller's transaction, so an event and its deliveries commit together.
    Two statements however many events; the first is all it costs a brand with no endpoints."""
    events = Event.__table__
    wanting = db.session.execute(
        sa.select(WebhookEndpoint.id, WebhookEndpoint.events)
        .where(WebhookEndpoint.disabled_at.is_(None), sa.exists().where(
            events.c.brand_id == WebhookEndpoint.brand_id, events.c.type == type, events.c.created_at == created_at))
    ).all()
    endpoint_ids = [endpoint_id for endpoint_id, wanted in wanting if EVERY in wanted or type in wanted]
    if not endpoint_ids:
        return 0
    dialect = db.session.get_bind().dialect.name
    return db.session.execute(sa.insert(WebhookDelivery).from_select(
        ["id", "endpoint_id", "event_id", "status", "attempt_count", "attempts", "next_attempt_at", "created_at",
         "updated_at"],
        sa.select(sql_new_id("whd", dialect), WebhookEndpoint.id, events.c.id, sa.literal("pending"), sa.literal(0),
                  sa.literal([], sa.JSON), sa.literal(created_at), sa.literal(created_at), sa.literal(created_at))
        .join(events, events.c.brand_id == WebhookEndpoint.brand_id)
        .where(WebhookEndpoint.id.in_(endpoint_ids), events.c.type == type, events.c.created_at == created_at),
    )).rowcount


# --- delivering ---------------------------------------------------------------------------------------


def sign(endpoint: WebhookEndpoint, event_id: str, at: datetime, body: bytes, now: datetime) -> str:
    """The webhook-signature header: the current secret's signature, and the previous one's while it
    is within its 24 hours (space-separated, as Standard Webhooks allows)."""
    keys = [endpoint.secret]
    if _live_previous_expiry(endpoint, now) is not None:
        keys.append(endpoint.previous_secret)
    return " ".join(standardwebhooks.Webhook(key).sign(event_id, at, body) for key in keys)


def _lease(delivery_id: str, now: datetime) -> WebhookDelivery | None:
    """Take the delivery for one attempt, if it is pending, due and nobody holds it."""
    delivery = db.session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .with_for_update(skip_locked=True))
    if delivery is None:
        return None
    # Long enough for the attempt (timeout) and its bookkeeping; a dead worker's lease lapses after it.
    delivery.leased_until = now + timedelta(seconds=_timeout() + 30)
    return delivery


def deliver(delivery_id: str) -> str | None:
    """One attempt of one delivery (an RQ job): lease, POST signed, record. Safe to run twice: a
    delivery that is not due, done or held by another attempt is left alone. Returns its status."""
    now = utcnow()
    delivery = _lease(delivery_id, now)
    if delivery is None:
        db.session.rollback()
        return None
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
    event = db.session.get(Event, delivery.event_id)
    if endpoint.disabled_at is not None:
        delivery.status, delivery.leased_until = "failed", None
        db.session.commit()
        return delivery.status
    body = json.dumps(event.payload(), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "webhook-id": event.id,
               "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": sign(endpoint, event.id, now, body, now)}
    url = endpoint.url
    db.session.commit()  # the lease is taken; no transaction stays open across the POST

    started = time.monotonic()
    answer = link.post(url, body, headers, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"],
                       timeout=_timeout())
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = answer.status is not None and 200 <= answer.status < 300
    error = answer.error or (None if ok else f"answered {answer.status}")
    return _record(delivery_id, ok=ok, status_code=answer.status, duration_ms=duration_ms, error=error, at=now)


def _record(delivery_id: str, *, ok: bool, status_code: int | None, duration_ms: int, error: str | None,
            at: datetime) -> str:
    delivery = db.session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                 .with_for_update())
    if delivery is None:  # its endpoint was deleted meanwhile
        db.session.rollback()
        return "deleted"
    now = utcnow()
    delivery.attempts = [*delivery.attempts, {"at": at.isoformat(), "status_code": status_code,
                                              "duration_ms": duration_ms, "error": error}]
    delivery.attempt_count += 1
    delivery.leased_until, delivery.updated_at = None, now
    schedule = retry_schedule()
    if ok:
        delivery.status, delivery.next_attempt_at = "succeeded", None
    elif delivery.attempt_count > len(schedule):
        # The schedule ran out (about three days of failures): the endpoint is dead; stop sending to it.
        delivery.status, delivery.next_attempt_at = "failed", None
        db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id,
                                                            WebhookEndpoint.disabled_at.is_(None))
                           .values(disabled_at=now))
    else:
        delivery.next_attempt_at = now + timedelta(seconds=schedule[delivery.attempt_count - 1])
        # The endpoint is failing: its other deliveries due before this retry wait for it too, so a
        # dead endpoint costs the workers one timeout per retry, not one per event (their queued
        # jobs find them not due and return at once). Attempts are counted only when made.
        db.session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == delivery.endpoint_id, WebhookDelivery.id != delivery.id,
                   WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < delivery.next_attempt_at,
                   sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
            .values(next_attempt_at=delivery.next_attempt_at).execution_options(synchronize_session=False))
    db.session.commit()
    return delivery.status


def due_deliveries(now: datetime | None = None) -> list[tuple[str, str]]:
    """(delivery id, job id) for every delivery that is due and not in flight (a lapsed lease counts
    as not in flight: its worker died), for the job layer to enqueue (workers.webhooks). The job id
    names the attempt, so a delivery queued twice runs once."""
    now = now or utcnow()
    due = db.session.execute(
        sa.select(WebhookDelivery.id, WebhookDelivery.attempt_count, WebhookDelivery.leased_until)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
               sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .order_by(WebhookDelivery.next_attempt_at).limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    db.session.commit()
    return [(delivery_id, f"webhook-{delivery_id}-{attempt}-{int(as_utc(leased_until).timestamp()) if leased_until else 0}")
            for delivery_id, attempt, leased_until in due]


def job_timeout() -> int:
    """An attempt's job outlives its request's timeout, so RQ never kills one mid-answer."""
    return int(_timeout()) + 30


def list_deliveries(brand_id: str, endpoint_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    _own(brand_id, endpoint_id)
    rows, next_cursor = page(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id),
                             WebhookDelivery, limit=limit, cursor=cursor)
    return [present_delivery(row) for row in rows], next_cursor


def present_delivery(row: WebhookDelivery) -> dict:
    return {"id": row.id, "event_id": row.event_id, "endpoint_id": row.endpoint_id, "status": row.status,
            "attempt_count": row.attempt_count, "next_attempt_at": row.next_attempt_at, "attempts": row.attempts,
            "created_at": row.created_at}


def redeliver(brand_id: str, event_id: str) -> int:
    """Send the event again to each of the brand's enabled endpoints that wants it (a new delivery
    each, due now); how many."""
    event = db.session.scalar(sa.select(Event).where(Event.id == event_id, Event.brand_id == brand_id))
    if event is None:
        raise NotFound(f"No event {event_id}.")
    endpoints = db.session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.brand_id == brand_id, WebhookEndpoint.disabled_at.is_(None))).all()
    now = utcnow()
    wanting = [e for e in endpoints if EVERY in e.events or event.type in e.events]
    for endpoint in wanting:
        db.session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, status="pending", attempt_count=0,
                                       attempts=[], next_attempt_at=now, created_at=now, updated_at=now))
    db.session.commit()
    return len(wanting)

