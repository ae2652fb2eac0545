"""Webhook endpoints (register, list, delete, rotate the secret) and the delivery of events to them:
one row per (event, endpoint), fanned out in the event's own transaction (keyed on the ids its
INSERT returned), delivered by the endpoint's own RQ job, enqueued once that transaction commits,
signed per Standard Webhooks, retried on the WEBHOOK_RETRY_SCHEDULE, every attempt kept.

Why a row per delivery and a lease: at least once. The job leases a batch of rows before it POSTs
and records the outcomes after; a worker killed in between leaves a lease that lapses, and the
sweep (a periodic job) enqueues every endpoint with due, unleased deliveries again (a receiver may
then see an event twice: Standard Webhooks' webhook-id, the event id, lets it tell). One endpoint's
slowness or death costs only its own job: no endpoint's deliveries wait behind another's.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import standardwebhooks
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from marketplace.db.arrays import among
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import sql_new_id
from marketplace.errors import InvalidInput, NotFound
from marketplace.events.models import TYPES, Event
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.proofs.checks import link
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

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


def enable_endpoint(brand_id: str, endpoint_id: str) -> dict:
    """A disabled endpoint takes events again (its brand fixed it, as Stripe's dashboard lets one):
    the failure streak starts over, each of its pending deliveries at the start of the retry
    schedule (attempt_count 0; its attempts stay listed) and due now, sent by its job after the
    commit (the sweep being the safety net). Deliveries failed meanwhile stay failed (redeliver
    their events). An enabled endpoint is answered as it is."""
    endpoint = _own(brand_id, endpoint_id, lock=True)
    if endpoint.disabled_at is None:
        db.session.rollback()
        return present(endpoint)
    now = utcnow()
    endpoint.disabled_at = None
    pending = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(attempt_count=0, next_attempt_at=now, updated_at=now)
        .returning(WebhookDelivery.id).execution_options(synchronize_session=False)).all()
    if pending:
        _deliver_after_commit([endpoint.id])
    db.session.commit()
    return present(endpoint)


def present(row: WebhookEndpoint) -> dict:
    return {"id": row.id, "url": row.url, "events": row.events, "created_at": row.created_at,
            "disabled_at": row.disabled_at,
            "previous_secret_expires_at": _live_previous_expiry(row, utcnow())}


def _live_previous_expiry(row: WebhookEndpoint, now: datetime) -> datetime | None:
    expires = row.previous_secret_expires_at
    return expires if row.previous_secret and expires and as_utc(expires) > now else None


# --- fan-out, in the event's transaction; the jobs, after its commit -------------------------------

# The session's note of the endpoints it gave new deliveries to, handed to the job layer once the
# transaction commits (app.extensions[DELIVER_SOON], set by the wiring) and dropped if it does not.
_TO_DELIVER = "webhooks.endpoints_to_deliver"
DELIVER_SOON = "webhooks.deliver_soon"


def fan_out(type: str, written: Sequence[tuple[str, str]]) -> int:
    """Deliveries for the events just written, (event id, brand id) each as their INSERT returned
    them, to every enabled endpoint of their brand that wants the type: in the caller's transaction,
    so an event and its deliveries commit together. Keyed on those ids, so exact (no other event is
    picked up, whatever its time) and cheap: one read of the brands' endpoints, all a brand with
    none costs, then one INSERT … SELECT by primary key however many events. The endpoints' jobs
    are enqueued after the commit (a rollback enqueues nothing), the sweep being the safety net."""
    if not written:
        return 0
    brand_ids = sorted({brand_id for _, brand_id in written})
    wanting = db.session.execute(
        sa.select(WebhookEndpoint.id, WebhookEndpoint.events)
        .where(WebhookEndpoint.brand_id.in_(brand_ids), WebhookEndpoint.disabled_at.is_(None))
    ).all()
    endpoint_ids = [endpoint_id for endpoint_id, wanted in wanting if EVERY in wanted or type in wanted]
    if not endpoint_ids:
        return 0
    dialect, now = db.session.get_bind().dialect.name, utcnow()
    events = Event.__table__
    made = len(db.session.execute(sa.insert(WebhookDelivery.__table__).from_select(
        ["id", "endpoint_id", "event_id", "status", "attempt_count", "attempts", "next_attempt_at", "created_at",
         "updated_at"],
        sa.select(sql_new_id("whd", dialect), WebhookEndpoint.id, events.c.id, sa.literal("pending"), sa.literal(0),
                  sa.literal([], sa.JSON), sa.literal(now), sa.literal(now), sa.literal(now))
        .join(events, events.c.brand_id == WebhookEndpoint.brand_id)
        .where(WebhookEndpoint.id.in_(endpoint_ids), among(events.c.id, [event_id for event_id, _ in written])),
    ).returning(WebhookDelivery.__table__.c.endpoint_id)).all())  # (the driver reports no rowcount here)
    if made:
        _deliver_after_commit(endpoint_ids)
    return made



def _deliver_after_commit(endpoint_ids: Sequence[str]) -> None:
    db.session.info.setdefault(_TO_DELIVER, set()).update(endpoint_ids)


@sa.event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """The deliveries are visible now: hand their endpoints to the job layer. Never raises (the
    change is committed; a Redis hiccup must not turn it into an error): the sweep catches up."""
    endpoint_ids = session.info.pop(_TO_DELIVER, None)
    if not endpoint_ids or not has_app_context():
        return
    deliver_soon = current_app.extensions.get(DELIVER_SOON)
    if deliver_soon is None or time.monotonic() < current_app.extensions.get(ENQUEUE_RESUMES_AT, 0.0):
        return  # (while Redis was just found unreachable: the request does not wait on it again)
    try:
        deliver_soon(sorted(endpoint_ids))
    except Exception:
        current_app.extensions[ENQUEUE_RESUMES_AT] = time.monotonic() + ENQUEUE_PAUSE_SECONDS
        log.exception("could not enqueue webhook deliveries for %d endpoint(s); the sweep will, and this "
                      "process tries again in %d s", len(endpoint_ids), ENQUEUE_PAUSE_SECONDS)


# After a failed enqueue (Redis down or unreachable), requests skip it for this long instead of each
# waiting out a connection timeout; the scheduler's sweep enqueues what is due once Redis is back.
ENQUEUE_PAUSE_SECONDS = 30
ENQUEUE_RESUMES_AT = "webhooks.enqueue_resumes_at"  # app.extensions: this process's pause, a monotonic time


@sa.event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction) -> None:
    """A transaction that ends without its commit (rolled back, closed) enqueues nothing."""
    if transaction.parent is None:
        session.info.pop(_TO_DELIVER, None)


# --- delivering ---------------------------------------------------------------------------------------

BATCH = 100  # deliveries one lease takes: the database's round trips are per batch, the POSTs per delivery
JOB_BUDGET_SECONDS = 120  # an endpoint's job stops taking batches after this; the sweep enqueues it again


def sign(endpoint: WebhookEndpoint, event_id: str, at: datetime, body: bytes, now: datetime) -> str:
    """The webhook-signature header: the current secret's signature, and the previous one's while it
    is within its 24 hours (space-separated, as Standard Webhooks allows)."""
    keys = [endpoint.secret]
    if _live_previous_expiry(endpoint, now) is not None:
        keys.append(endpoint.previous_secret)
    return " ".join(standardwebhooks.Webhook(key).sign(event_id, at, body) for key in keys)


def _resolver():
    """LINK_CHECK_STATIC_HOSTS (tests/dev: names answered without DNS) applies to deliveries as it does to
    the link check, so a test can point a name at loopback; every answer is vetted all the same."""
    hosts = current_app.config.get("LINK_CHECK_STATIC_HOSTS")
    if not hosts:
        return None
    # Imported here: proofs builds on events, which build on webhooks.
    from marketplace.proofs.validation import static_hosts_resolver

    return static_hosts_resolver(hosts)


def _lease_window() -> float:
    """How long a batch is held: its POSTs start only while one more fits (each is bounded by the
    timeout), so none is in flight when the lease lapses; a dead worker's lease lapses after it."""
    return _timeout() * 2 + 30


@dataclass
class _Leased:
    endpoint: WebhookEndpoint
    deliveries: list  # rows (id, event_id, attempt_count, attempts)
    payloads: dict[str, bytes]  # event id → body
    leased_until: datetime
    started: float  # time.monotonic() as the lease began, when `now` was read


def _lease_batch(endpoint_id: str, now: datetime, *, only: str | None = None, limit: int = BATCH) -> _Leased | None:
    """Take up to `limit` of the endpoint's due, unheld deliveries (oldest due first), in one short
    transaction; their events read in the same one. None when there is nothing to do."""
    started = time.monotonic()  # with `now`, before the lease's statements: the margin counts their time too
    query = (sa.select(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.attempt_count,
                       WebhookDelivery.attempts)
             .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
             .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
             .with_for_update(skip_locked=True))
    if only is not None:
        query = query.where(WebhookDelivery.id == only)
    rows = db.session.execute(query).all()
    if not rows:
        db.session.rollback()
        return None
    ids = [row.id for row in rows]
    leased_until = now + timedelta(seconds=_lease_window())
    db.session.execute(sa.update(WebhookDelivery).where(among(WebhookDelivery.id, ids))
                       .values(leased_until=leased_until).execution_options(synchronize_session=False))
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:  # (its deliveries would be gone with it; nothing to send)
        db.session.rollback()
        return None
    db.session.expunge(endpoint)  # what signs and addresses this batch, as read with its lease
    payloads = {event.id: json.dumps(event.payload(), separators=(",", ":")).encode() for event in db.session.scalars(
        sa.select(Event).where(among(Event.id, sorted({row.event_id for row in rows}))))}
    db.session.commit()  # the lease is taken; no transaction stays open across the POSTs
    return _Leased(endpoint, rows, payloads, leased_until, started)


def deliver_endpoint(endpoint_id: str, *, only: str | None = None) -> dict[str, int]:
    """What an endpoint's job does: its due deliveries, a batch at a time, each POSTed signed, the
    outcomes written once a batch. At the first failure it stops: the endpoint's other deliveries
    wait for its retry (a dead endpoint costs one timeout per retry, not one per event), and no
    other endpoint waits behind it (each has its own job). Safe to run twice at once: a batch is
    leased, skip-locked. {succeeded, failed, attempted} counts."""
    counts = {"attempted": 0, "succeeded": 0, "failed": 0}
    started = time.monotonic()
    while time.monotonic() - started < JOB_BUDGET_SECONDS:
        leased = _lease_batch(endpoint_id, utcnow(), only=only)
        if leased is None:
            break
        if leased.endpoint.disabled_at is not None:
            counts["failed"] += _fail_disabled(leased)
            continue
        stopped = _post_batch(leased, counts)
        if stopped or only is not None:
            break
    return counts


def _post_batch(leased: _Leased, counts: dict[str, int]) -> bool:
    """POST the batch's deliveries in turn and record them; True when the endpoint failed one."""
    endpoint, allow_private, timeout = leased.endpoint, current_app.config["WEBHOOK_ALLOW_PRIVATE"], _timeout()
    resolver = _resolver()
    window = _lease_window()
    done: list[tuple[Any, dict]] = []
    failure: tuple[Any, dict] | None = None
    for row in leased.deliveries:
        if time.monotonic() - leased.started + timeout + 1 > window:
            break  # no time left under the lease for one more attempt: the rest are released below
        now = utcnow()
        body = leased.payloads[row.event_id]
        headers = {"Content-Type": "application/json", "webhook-id": row.event_id,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": sign(endpoint, row.event_id, now, body, now)}
        began = time.monotonic()
        answer = link.post(endpoint.url, body, headers, allow_private=allow_private, timeout=timeout,
                           resolver=resolver)
        ok = answer.status is not None and 200 <= answer.status < 300
        attempt = {"at": now.isoformat(), "status_code": answer.status,
                   "duration_ms": int((time.monotonic() - began) * 1000),
                   "error": answer.error or (None if ok else f"answered {answer.status}")}
        counts["attempted"] += 1
        if not ok:
            failure = (row, attempt)
            break
        done.append((row, attempt))
    _record_batch(leased, done, failure)
    counts["succeeded"] += len(done)
    return failure is not None


def _record_batch(leased: _Leased, done: list, failure: tuple | None) -> None:
    """One transaction: the successes, the failure (and its retry), the unattempted released."""
    now = utcnow()
    table = WebhookDelivery.__table__
    if done:
        db.session.execute(
            table.update().where(table.c.id == sa.bindparam("b_id"), table.c.status == "pending")
            .values(status="succeeded", next_attempt_at=None, leased_until=None, updated_at=now,
                    attempt_count=sa.bindparam("b_count"), attempts=sa.bindparam("b_attempts", type_=sa.JSON)),
            [{"b_id": row.id, "b_count": row.attempt_count + 1, "b_attempts": [*row.attempts, attempt]}
             for row, attempt in done])
    handled = {row.id for row, _ in done} | ({failure[0].id} if failure else set())
    untried = [row.id for row in leased.deliveries if row.id not in handled]
    if untried:
        db.session.execute(sa.update(WebhookDelivery)
                           .where(among(WebhookDelivery.id, untried), WebhookDelivery.leased_until == leased.leased_until)
                           .values(leased_until=None).execution_options(synchronize_session=False))
    if failure:
        _record_failure(leased.endpoint.id, *failure, now=now)
    db.session.commit()


def _record_failure(endpoint_id: str, row, attempt: dict, *, now: datetime) -> None:
    delivery = db.session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.id == row.id).with_for_update())
    if delivery is None or delivery.status != "pending":  # its endpoint was deleted meanwhile
        return
    delivery.attempts = [*delivery.attempts, attempt]
    delivery.attempt_count += 1
    delivery.leased_until, delivery.updated_at = None, now
    schedule = retry_schedule()
    if delivery.attempt_count > len(schedule):
        # The schedule ran out (about three days of failures): the endpoint is dead; stop sending to it.
        delivery.status, delivery.next_attempt_at = "failed", None
        db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id,
                                                            WebhookEndpoint.disabled_at.is_(None))
                           .values(disabled_at=now))
        return
    delivery.next_attempt_at = now + timedelta(seconds=schedule[delivery.attempt_count - 1])
    # The endpoint is failing: its other deliveries due before this retry wait for it too, so a
    # dead endpoint costs the workers one timeout per retry, not one per event. Attempts are
    # counted only when made.
    db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id != delivery.id,
               WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < delivery.next_attempt_at,
               sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .values(next_attempt_at=delivery.next_attempt_at).execution_options(synchronize_session=False))


def _fail_disabled(leased: _Leased) -> int:
    """Deliveries of an endpoint disabled since they were made: failed, nothing sent; how many.
    Unless it was enabled again since the batch was leased (read under the endpoint's lock, which
    enabling takes too): then they are released as they are, and the job's next lease sends them."""
    now = utcnow()
    ids = [row.id for row in leased.deliveries]
    disabled_at = db.session.scalar(sa.select(WebhookEndpoint.disabled_at)
                                    .where(WebhookEndpoint.id == leased.endpoint.id).with_for_update())
    if disabled_at is None:
        db.session.execute(sa.update(WebhookDelivery)
                           .where(among(WebhookDelivery.id, ids), WebhookDelivery.leased_until == leased.leased_until)
                           .values(leased_until=None).execution_options(synchronize_session=False))
        db.session.commit()
        return 0
    failed = db.session.execute(sa.update(WebhookDelivery)
                                .where(among(WebhookDelivery.id, ids), WebhookDelivery.status == "pending")
                                .values(status="failed", leased_until=None, next_attempt_at=None, updated_at=now)
                                .returning(WebhookDelivery.id).execution_options(synchronize_session=False)).all()
    db.session.commit()
    return len(failed)


def deliver(delivery_id: str) -> str | None:
    """One attempt of one delivery (the job queued before endpoints had their own), leased and
    recorded as in an endpoint's batch. Its status; None when it was not due, done or held."""
    endpoint_id = db.session.scalar(sa.select(WebhookDelivery.endpoint_id).where(WebhookDelivery.id == delivery_id))
    db.session.rollback()
    if endpoint_id is None:
        return None
    counts = deliver_endpoint(endpoint_id, only=delivery_id)
    if not counts["attempted"] and not counts["failed"]:
        return None
    status = db.session.scalar(sa.select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id))
    db.session.rollback()
    return status


def endpoint_job_id(endpoint_id: str, lapsed: datetime | None = None) -> str:
    """The job id of an endpoint's deliveries: one queued at a time (enqueued unique). A worker
    killed mid-job leaves its job looking started in Redis until rq cleans it up, so the id also
    names a lapsed lease and the time slot (a job's timeout long): neither can block it for longer.
    Two jobs of one endpoint may then overlap; their leases keep them apart."""
    slot = int(time.time() // job_timeout())
    return f"webhook-endpoint-{endpoint_id}-{slot}-{int(as_utc(lapsed).timestamp()) if lapsed else 0}"


def due_endpoints(now: datetime | None = None) -> list[tuple[str, str, int]]:
    """(endpoint id, job id, how many due) for every endpoint with deliveries that are due and not
    in flight (a lapsed lease counts as not in flight: its worker died), for the job layer to
    enqueue (workers.webhooks), most overdue first."""
    now = now or utcnow()
    due = db.session.execute(
        sa.select(WebhookDelivery.endpoint_id, sa.func.count(), sa.func.max(WebhookDelivery.leased_until))
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
               sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .group_by(WebhookDelivery.endpoint_id)
        .order_by(sa.func.min(WebhookDelivery.next_attempt_at)).limit(SWEEP_BATCH)
    ).all()
    db.session.commit()
    return [(endpoint_id, endpoint_job_id(endpoint_id, lapsed), count) for endpoint_id, count, lapsed in due]


def job_timeout() -> int:
    """An endpoint's job outlives its budget and one more lease window, so RQ never kills one mid-answer."""
    return int(JOB_BUDGET_SECONDS + _lease_window()) + 30


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
    _deliver_after_commit([endpoint.id for endpoint in wanting])
    db.session.commit()
    return len(wanting)

