"""Webhooks: endpoints registered over HTTP, events delivered by real RQ jobs (SimpleWorker bursts)
to a real local HTTP receiver, signed per Standard Webhooks and verified with its library."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
import standardwebhooks

from tests import factories as f
from tests.factories import reviews as fr
from tests.factories.jobs import drain


class Receiver:
    """A local HTTP server that records what it is sent; `answers` is the status of each request in
    turn (the last one repeats); `hang` seconds of silence before answering."""

    def __init__(self, answers=(200,), hang: float = 0.0, location: str | None = None):
        self.answers, self.hang, self.location = list(answers), hang, location
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.hang:
                    time.sleep(receiver.hang)
                status = receiver.answers[min(len(receiver.received), len(receiver.answers)) - 1]
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def local(app, monkeypatch):
    """Local receivers allowed: plain http and loopback (the settings tests exist for), quick retries."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_HTTP", True)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", "0,0,0")
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT_SECONDS", 2)
    return app


@pytest.fixture
def brand(client, standin):
    key, brief = fr.review_brief(client, standin)
    return {"key": key, "brief": brief}


def register(client, key: str, url: str, events=("*",)):
    return client.post("/v1/webhook-endpoints", headers=f.auth(key), json={"url": url, "events": list(events)})


def deliver_all(app, rounds: int = 1) -> None:
    """What the scheduler and the workers do: sweep the due deliveries into jobs, run them."""
    from workers import webhooks as webhook_jobs

    for _ in range(rounds):
        with app.app_context():
            webhook_jobs.sweep_deliveries()
        drain(app)


def pause(client, brand) -> None:
    assert client.post(f"/v1/briefs/{brand['brief']['id']}/pause", headers=f.auth(brand["key"])).status_code == 200


def resume(client, brand) -> None:
    assert client.post(f"/v1/briefs/{brand['brief']['id']}/resume", headers=f.auth(brand["key"])).status_code == 200


def test_an_endpoint_is_registered_with_its_secret_shown_once(client, local, brand):
    response = register(client, brand["key"], "https://hooks.example.com/x", ["submission.approved"])
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("whe_") and body["secret"].startswith("whsec_")
    assert body["events"] == ["submission.approved"] and body["url"] == "https://hooks.example.com/x"
    [listed] = client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"]
    assert listed["id"] == body["id"] and "secret" not in listed
    _, other = f.sign_up_brand(client, "Someone Else")
    assert client.get("/v1/webhook-endpoints", headers=f.auth(other)).get_json()["data"] == []
    assert client.delete(f"/v1/webhook-endpoints/{body['id']}", headers=f.auth(other)).status_code == 404
    assert client.delete(f"/v1/webhook-endpoints/{body['id']}", headers=f.auth(brand["key"])).status_code == 204
    assert client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"] == []


@pytest.mark.parametrize("url, events", [
    ("https://hooks.example.com/x", ["brief.exploded"]),
    ("https://hooks.example.com/x", []),
    ("not a url", ["*"]),
    ("ftp://hooks.example.com/x", ["*"]),
    ("http://hooks.example.com/x", ["*"]),  # http without WEBHOOK_ALLOW_HTTP
    ("https://127.0.0.1/x", ["*"]),
    ("https://169.254.169.254/latest/meta-data", ["*"]),
    ("https://[::1]/x", ["*"]),
])
def test_an_unknown_type_or_a_bad_url_is_422_and_registers_nothing(client, brand, url, events):
    response = register(client, brand["key"], url, events)
    assert response.status_code == 422 and response.content_type.startswith("application/problem+json")
    assert client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"] == []


def test_an_event_is_delivered_signed_and_verifies_with_standard_webhooks(client, local, brand, receivers):
    receiver = receivers()
    secret = register(client, brand["key"], receiver.url).get_json()["secret"]
    pause(client, brand)
    deliver_all(local)
    [(headers, body)] = receiver.received
    payload = standardwebhooks.Webhook(secret).verify(body, headers)
    [event] = client.get("/v1/events", headers=f.auth(brand["key"]), query_string={"type": "brief.paused"}
                         ).get_json()["data"]
    assert payload == event and headers["webhook-id"] == event["id"]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace(b"paused", b"live!!"), headers)


def test_a_receiver_failing_twice_gets_the_event_once_as_a_success_and_the_failures_are_listed(
        client, local, brand, receivers):
    receiver = receivers(answers=(500, 500, 200))
    endpoint = register(client, brand["key"], receiver.url, ["brief.paused"]).get_json()
    pause(client, brand)
    deliver_all(local, rounds=5)
    assert len(receiver.received) == 3
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 1
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 3
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [bool(a["error"]) for a in delivery["attempts"]] == [True, True, False]
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])


def test_an_endpoint_failing_the_whole_schedule_is_disabled_and_its_events_stay_listed(
        client, local, brand, receivers):
    receiver = receivers(answers=(503,))
    endpoint = register(client, brand["key"], receiver.url).get_json()
    pause(client, brand)
    deliver_all(local, rounds=6)
    assert len(receiver.received) == 4  # the first attempt and the schedule's three retries
    [listed] = client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"]
    assert listed["id"] == endpoint["id"] and listed["disabled_at"]
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert delivery["status"] == "failed"
    assert client.post(f"/v1/briefs/{brand['brief']['id']}/resume", headers=f.auth(brand["key"])).status_code == 200
    deliver_all(local)
    assert len(receiver.received) == 4  # nothing more to a disabled endpoint
    types = [e["type"] for e in client.get("/v1/events", headers=f.auth(brand["key"])).get_json()["data"]]
    assert types[:2] == ["brief.live", "brief.paused"]


def test_a_hanging_receiver_does_not_hold_the_worker_past_the_timeout(client, local, brand, receivers, monkeypatch):
    monkeypatch.setitem(local.config, "WEBHOOK_TIMEOUT_SECONDS", 1)
    receiver = receivers(hang=8)
    endpoint = register(client, brand["key"], receiver.url).get_json()
    pause(client, brand)
    started = time.monotonic()
    deliver_all(local)
    assert time.monotonic() - started < 5
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    [attempt] = delivery["attempts"]
    assert delivery["status"] == "pending" and attempt["status_code"] is None and "1 s" in attempt["error"]


def test_after_a_rotation_both_secrets_verify_for_24_hours(client, local, brand, receivers):
    receiver = receivers()
    endpoint = register(client, brand["key"], receiver.url).get_json()
    rotated = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=f.auth(brand["key"]))
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    assert rotated.get_json()["previous_secret_expires_at"]
    pause(client, brand)
    deliver_all(local)
    [(headers, body)] = receiver.received
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new_secret):
        assert standardwebhooks.Webhook(secret).verify(body, headers)["type"] == "brief.paused"


def test_after_24_hours_only_the_new_secret_signs(client, app, local, brand, receivers):
    from marketplace.extensions import db
    from marketplace.webhooks.models import WebhookEndpoint

    receiver = receivers()
    endpoint = register(client, brand["key"], receiver.url).get_json()
    client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=f.auth(brand["key"]))
    with app.app_context():  # a day passes
        row = db.session.get(WebhookEndpoint, endpoint["id"])
        row.previous_secret_expires_at = row.previous_secret_expires_at.replace(year=2000)
        db.session.commit()
    pause(client, brand)
    deliver_all(local)
    [(headers, body)] = receiver.received
    assert len(headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(endpoint["secret"]).verify(body, headers)


def test_a_redirect_is_never_followed(client, local, brand, receivers):
    target = receivers()
    redirecting = receivers(answers=(302,), location=target.url)
    endpoint = register(client, brand["key"], redirecting.url).get_json()
    pause(client, brand)
    deliver_all(local)
    assert len(redirecting.received) == 1 and target.received == []
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert delivery["status"] == "pending" and delivery["attempts"][0]["status_code"] == 302


@pytest.mark.parametrize("host", ["localhost", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]", "127.0.0.1"])
def test_a_loopback_endpoint_is_never_reached_without_allow_private(client, local, brand, receivers, host,
                                                                   monkeypatch):
    receiver = receivers()
    port = receiver.server.server_address[1]
    # Registered while private addresses are allowed, then delivered with them refused: vetted at every attempt.
    endpoint = register(client, brand["key"], f"http://{host}:{port}/hook")
    assert endpoint.status_code == 201, endpoint.get_json()
    monkeypatch.setitem(local.config, "WEBHOOK_ALLOW_PRIVATE", False)
    pause(client, brand)
    deliver_all(local)
    assert receiver.received == []
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint.get_json()['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert "refused" in delivery["attempts"][0]["error"]


def test_redelivering_an_event_sends_it_again(client, local, brand, receivers):
    receiver = receivers()
    register(client, brand["key"], receiver.url)
    pause(client, brand)
    deliver_all(local)
    event_id = receiver.received[0][0]["webhook-id"]
    response = client.post(f"/v1/events/{event_id}/redeliver", headers=f.auth(brand["key"]))
    assert response.status_code == 202 and response.get_json()["deliveries"] == 1
    deliver_all(local)
    assert [h["webhook-id"] for h, _ in receiver.received] == [event_id, event_id]
    _, other = f.sign_up_brand(client, "Someone Else")
    assert client.post(f"/v1/events/{event_id}/redeliver", headers=f.auth(other)).status_code == 404


def test_a_worker_killed_mid_delivery_loses_nothing_the_sweep_delivers_it(client, app, local, brand, receivers):
    import os
    import signal

    from marketplace.extensions import db
    from marketplace.jobs import queue_name
    from marketplace.webhooks.models import WebhookDelivery
    from tests.factories.processes import start, stop
    from workers import webhooks as webhook_jobs

    receiver = receivers(hang=60)  # the first attempt never gets its answer: the worker dies waiting
    endpoint = register(client, brand["key"], receiver.url).get_json()
    pause(client, brand)
    with app.app_context():
        assert webhook_jobs.sweep_deliveries() == 1
    env = {**os.environ, "WEBHOOK_ALLOW_HTTP": "1", "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_TIMEOUT_SECONDS": "60",
           "LOG_LEVEL": "WARNING"}
    worker = start(["rq", "worker", "--url", app.config["REDIS_URL"], "--burst", "--worker-class",
                    "rq.worker.SimpleWorker", queue_name("default", app)], env)
    try:
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.received, "the worker never made its attempt"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        stop(worker)
    with app.app_context():
        [row] = db.session.scalars(sa.select(WebhookDelivery)).all()
        assert row.status == "pending" and row.attempt_count == 0 and row.leased_until is not None
        assert webhook_jobs.sweep_deliveries() == 0  # still leased: in flight as far as anyone can tell
        row.leased_until = row.leased_until.replace(year=2000)  # the dead worker's lease lapses
        db.session.commit()
    receiver.hang = 0
    deliver_all(local)
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert delivery["status"] == "succeeded" and [a["status_code"] for a in delivery["attempts"]] == [200]
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 1 and len(receiver.received) == 2


# --- reliability: many events, many endpoints, one of them dead ----------------------------------------


def test_a_thousand_events_reach_nine_live_endpoints_once_each_while_the_dead_tenth_retries(
        client, app, local, brand, receivers, monkeypatch, db_session, standin):
    """1,000 events (one bulk approval) to 10 endpoints, one answering 500 to everything, delivered by two
    real `rq worker` processes to real receivers while this test sweeps as the scheduler would. Every
    live receiver gets every event, signed; none twice (at least once allows a repeat only after a
    lease lapses, and no worker dies here); the dead endpoint does not hold the others back: they are
    done while it is still being retried, once per retry, not once per event."""
    import os

    from marketplace.events.models import Event
    from marketplace.jobs import queue_name
    from marketplace.webhooks.models import WebhookDelivery
    from tests.factories.processes import start, stop
    from workers import webhooks as webhook_jobs

    n, schedule = 1000, ",".join(["1"] * 40)  # the dead one retries every second and is never disabled here
    monkeypatch.setitem(local.config, "WEBHOOK_RETRY_SCHEDULE", schedule)
    key, brief = fr.review_brief(client, standin, quantity=n, unit_price_cents=10)
    worker_ids = fr.bulk_workers(db_session, 50)
    submission_ids = fr.bulk_submissions(db_session, brief["task_groups"][0]["id"], worker_ids, n)
    live = [receivers() for _ in range(9)]
    dead = receivers(answers=(500,))
    secrets = {}
    for receiver in [*live, dead]:
        made = register(client, key, receiver.url, ["submission.approved"]).get_json()
        secrets[receiver] = made["secret"]
        receiver.endpoint_id = made["id"]

    env = {**os.environ, "WEBHOOK_ALLOW_HTTP": "1", "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_TIMEOUT_SECONDS": "2",
           "WEBHOOK_RETRY_SCHEDULE": schedule, "LOG_LEVEL": "WARNING"}
    workers = [start(["rq", "worker", "--url", app.config["REDIS_URL"], "--worker-class", "rq.worker.SimpleWorker",
                      queue_name("default", app)], env) for _ in range(2)]
    try:
        started = time.monotonic()
        response = client.post("/v1/review/decisions", headers=f.auth(key),
                               json={"submission_ids": submission_ids, "decision": "approve"})
        assert response.status_code == 200 and response.get_json()["approved"] == n

        def distinct(receiver):
            return {headers["webhook-id"] for headers, _ in list(receiver.received)}

        deadline = started + 60
        while time.monotonic() < deadline and not all(len(distinct(r)) == n for r in live):
            time.sleep(0.5)
            with app.app_context():
                webhook_jobs.sweep_deliveries()  # the scheduler's part: the dead one's retries, when due
        live_done = time.monotonic() - started
        assert all(len(distinct(r)) == n for r in live), [len(distinct(r)) for r in live]

        # The dead one is still being retried now that the live ones are done: pending, not disabled.
        with app.app_context():
            from marketplace.extensions import db
            from marketplace.webhooks.models import WebhookEndpoint

            dead_rows = db.session.execute(sa.select(WebhookDelivery.status, sa.func.count())
                                           .where(WebhookDelivery.endpoint_id == dead.endpoint_id)
                                           .group_by(WebhookDelivery.status)).all()
            assert dead_rows == [("pending", n)]
            assert db.session.get(WebhookEndpoint, dead.endpoint_id).disabled_at is None
            db.session.rollback()
        tried = len(dead.received)
        assert 1 <= tried < 60  # one attempt per retry, not one per event
        retry_deadline = time.monotonic() + 10
        while len(dead.received) == tried and time.monotonic() < retry_deadline:
            time.sleep(0.3)
            with app.app_context():
                webhook_jobs.sweep_deliveries()
        assert len(dead.received) > tried, "the dead endpoint is no longer retried"
    finally:
        for worker in workers:
            stop(worker)

    # About 20 s on the loaded 2-core test machine (two workers, 9,000 POSTs); the bound leaves room for load.
    assert live_done < 40, f"the live endpoints took {live_done:.1f} s"
    with app.app_context():
        from marketplace.extensions import db

        event_ids = set(db.session.scalars(sa.select(Event.id).where(Event.type == "submission.approved")))
        db.session.rollback()
    assert len(event_ids) == n
    for receiver in live:
        assert distinct(receiver) == event_ids  # none lost, none made up
        assert len(receiver.received) == n  # and none twice: nothing lapsed, nothing was sent again
        verifier = standardwebhooks.Webhook(secrets[receiver])
        for headers, body in receiver.received:
            payload = verifier.verify(body, headers)
            assert payload["id"] == headers["webhook-id"] and payload["type"] == "submission.approved"
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # each endpoint has its own secret
        standardwebhooks.Webhook(secrets[live[1]]).verify(live[0].received[0][1], live[0].received[0][0])
    with app.app_context():
        from marketplace.extensions import db

        live_rows = db.session.execute(
            sa.select(WebhookDelivery.status, WebhookDelivery.attempt_count, sa.func.count())
            .where(WebhookDelivery.endpoint_id.in_([r.endpoint_id for r in live]))
            .group_by(WebhookDelivery.status, WebhookDelivery.attempt_count)).all()
        db.session.rollback()
    assert live_rows == [("succeeded", 1, 9 * n)]


# --- after the commit, or not at all ---------------------------------------------------------------------


def _queued(app) -> list[str]:
    from marketplace.jobs import queue

    with app.app_context():
        return queue("default").get_job_ids()


def test_the_deliveries_job_is_enqueued_after_the_commit_and_a_rollback_enqueues_nothing(
        client, app, local, brand, receivers):
    from marketplace.briefs import lifecycle
    from marketplace.briefs.models import Brief
    from marketplace.events.models import Event
    from marketplace.extensions import db
    from marketplace.webhooks.models import WebhookDelivery

    receiver = receivers()
    endpoint = register(client, brand["key"], receiver.url).get_json()
    assert _queued(app) == []

    with app.app_context():  # a change that rolls back: no event, no delivery, no job
        brief = db.session.get(Brief, brand["brief"]["id"], with_for_update=True)
        lifecycle.transition(brief, "pause")
        db.session.flush()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1  # in this transaction
        assert _queued(app) == []
        db.session.rollback()
    with app.app_context():  # and one whose session is closed without a commit (a request that failed)
        brief = db.session.get(Brief, brand["brief"]["id"], with_for_update=True)
        lifecycle.transition(brief, "pause")
        db.session.flush()
        db.session.remove()
    assert _queued(app) == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.type == "brief.paused")) == 0
        db.session.rollback()

    with app.app_context():  # the same change committed: its endpoint's job is queued then, not before
        brief = db.session.get(Brief, brand["brief"]["id"], with_for_update=True)
        lifecycle.transition(brief, "pause")
        db.session.flush()
        assert _queued(app) == []
        db.session.commit()
        [queued] = _queued(app)
        assert queued.startswith(f"webhook-endpoint-{endpoint['id']}-") and queued.endswith("-0")
    drain(local)  # the worker runs it: no sweep needed
    [(headers, _)] = receiver.received
    with app.app_context():
        [event_id] = db.session.scalars(sa.select(Event.id).where(Event.type == "brief.paused")).all()
        db.session.rollback()
    assert headers["webhook-id"] == event_id


def test_a_commit_whose_enqueue_fails_still_commits_and_the_sweep_delivers(client, app, local, brand, receivers):
    from marketplace.webhooks import service

    receiver = receivers()
    register(client, brand["key"], receiver.url)

    tried = []

    def redis_down(endpoint_ids):
        tried.append(endpoint_ids)
        raise ConnectionError("redis is down")

    wired = app.extensions[service.DELIVER_SOON]
    app.extensions[service.DELIVER_SOON] = redis_down
    try:
        pause(client, brand)  # 200: the change is in, whatever became of its enqueue
        resume(client, brand)  # within the pause after the failure: not tried again, so not waited on
    finally:
        app.extensions[service.DELIVER_SOON] = wired
        app.extensions.pop(service.ENQUEUE_RESUMES_AT, None)
    assert len(tried) == 1
    assert _queued(app) == []
    deliver_all(local)
    assert len(receiver.received) == 2


def test_fan_out_takes_the_events_it_is_given_and_no_other_of_the_same_type_and_time(client, app, local, brand,
                                                                                  receivers):
    from marketplace.db.clock import utcnow
    from marketplace.events.models import Event
    from marketplace.extensions import db
    from marketplace.webhooks import service
    from marketplace.webhooks.models import WebhookDelivery

    receiver = receivers()
    register(client, brand["key"], receiver.url)
    brand_id = client.get("/v1/me", headers=f.auth(brand["key"])).get_json()["brand"]["id"]
    with app.app_context():
        now = utcnow()
        for event_id in ("evt_one", "evt_two"):  # two events of one type and one instant
            db.session.add(Event(id=event_id, brand_id=brand_id, type="brief.paused", object={}, created_at=now))
        db.session.flush()
        assert service.fan_out("brief.paused", [("evt_one", brand_id)]) == 1
        db.session.commit()
        assert db.session.scalars(sa.select(WebhookDelivery.event_id)).all() == ["evt_one"]
        db.session.rollback()


@pytest.mark.parametrize("answer", ["127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0"])
def test_a_hostname_that_resolves_to_loopback_is_never_reached(client, local, brand, receivers, monkeypatch, answer):
    """A public-looking name whose DNS answer is loopback (a hostile zone, or a rebinding one): the
    name passes registration (nothing is resolved then), and every attempt resolves it, vets the
    answer and refuses it. The receiver on loopback counts the hits: none."""
    receiver = receivers()
    port = receiver.server.server_address[1]
    monkeypatch.setitem(local.config, "LINK_CHECK_STATIC_HOSTS", {"hooks.brand-shop.example": answer})
    monkeypatch.setitem(local.config, "WEBHOOK_ALLOW_PRIVATE", False)
    response = register(client, brand["key"], f"http://hooks.brand-shop.example:{port}/hook")
    assert response.status_code == 201, response.get_json()
    endpoint = response.get_json()
    pause(client, brand)
    deliver_all(local, rounds=3)
    assert receiver.received == []
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=f.auth(brand["key"])).get_json()["data"]
    assert delivery["status"] == "pending" and delivery["attempt_count"] == 3
    assert all("resolves to a forbidden address" in a["error"] and "refused" in a["error"]
               for a in delivery["attempts"])


def test_the_resolver_override_does_reach_a_receiver_when_private_addresses_are_allowed(client, local, brand,
                                                                                     receivers, monkeypatch):
    """The control for the test above: the same name, the same resolver, loopback allowed (tests
    only): the receiver is reached. So the zero hits above are the refusal, not a name that failed."""
    receiver = receivers()
    monkeypatch.setitem(local.config, "LINK_CHECK_STATIC_HOSTS", {"hooks.brand-shop.example": "127.0.0.1"})
    register(client, brand["key"], f"http://hooks.brand-shop.example:{receiver.server.server_address[1]}/hook")
    pause(client, brand)
    deliver_all(local)
    [(headers, _)] = receiver.received
    assert headers["host"] == f"hooks.brand-shop.example:{receiver.server.server_address[1]}"


# --- enabling a disabled endpoint again ---------------------------------------------------------------


def _deliveries(client, key, endpoint_id) -> dict[str, dict]:
    rows = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=f.auth(key)).get_json()["data"]
    return {row["event_id"]: row for row in rows}


def test_a_disabled_endpoint_enabled_again_starts_its_streak_over_and_gets_its_pending_and_new_events(
        client, app, local, brand, receivers):
    from marketplace.extensions import db
    from marketplace.webhooks.models import WebhookDelivery

    # Two events queue up. The second has failed three times already and waits for a retry a day away
    # (one more failure would end its schedule); the first fails the whole schedule (4 attempts) and
    # disables the endpoint. Then one more failure, and the receiver is fixed.
    receiver = receivers(answers=(503,) * 5 + (200,))
    endpoint = register(client, brand["key"], receiver.url).get_json()
    pause(client, brand)
    [first] = _deliveries(client, brand["key"], endpoint["id"]).values()
    assert client.post(f"/v1/briefs/{brand['brief']['id']}/resume", headers=f.auth(brand["key"])).status_code == 200
    [waiting] = [row for row in _deliveries(client, brand["key"], endpoint["id"]).values() if row["id"] != first["id"]]
    with app.app_context():
        row = db.session.get(WebhookDelivery, waiting["id"])
        row.attempt_count, row.next_attempt_at = 3, row.next_attempt_at.replace(year=2999)
        db.session.commit()
    deliver_all(local, rounds=4)
    assert len(receiver.received) == 4
    assert {h["webhook-id"] for h, _ in receiver.received} == {first["event_id"]}
    [listed] = client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"]
    assert listed["disabled_at"]
    before = _deliveries(client, brand["key"], endpoint["id"])
    assert before[first["event_id"]]["status"] == "failed" and before[waiting["event_id"]]["status"] == "pending"
    dead = first

    _, other = f.sign_up_brand(client, "Someone Else")
    assert client.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=f.auth(other)).status_code == 404
    assert client.post("/v1/webhook-endpoints/whe_nope/enable", headers=f.auth(brand["key"])).status_code == 404
    enabled = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=f.auth(brand["key"]))
    assert enabled.status_code == 200, enabled.get_json()
    assert enabled.get_json()["disabled_at"] is None and "secret" not in enabled.get_json()
    after = _deliveries(client, brand["key"], endpoint["id"])
    assert after[waiting["event_id"]]["attempt_count"] == 0 and after[waiting["event_id"]]["status"] == "pending"
    assert after[dead["event_id"]]["status"] == "failed"  # failed meanwhile: stays failed (redeliver it)

    deliver_all(local)  # fails once more: the streak started over, so the endpoint stays enabled
    assert len(receiver.received) == 5
    [listed] = client.get("/v1/webhook-endpoints", headers=f.auth(brand["key"])).get_json()["data"]
    assert listed["disabled_at"] is None
    assert _deliveries(client, brand["key"], endpoint["id"])[waiting["event_id"]]["attempt_count"] == 1
    deliver_all(local)
    row = _deliveries(client, brand["key"], endpoint["id"])[waiting["event_id"]]
    assert row["status"] == "succeeded" and [a["status_code"] for a in row["attempts"]] == [503, 200]
    assert receiver.received[-1][0]["webhook-id"] == waiting["event_id"]

    pause(client, brand)  # a new event goes to it again
    deliver_all(local)
    assert len(receiver.received) == 7 and b"brief.paused" in receiver.received[-1][1]


def test_enabling_an_enabled_endpoint_changes_nothing(client, local, brand, receivers):
    receiver = receivers()
    endpoint = register(client, brand["key"], receiver.url).get_json()
    again = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=f.auth(brand["key"]))
    assert again.status_code == 200 and again.get_json()["disabled_at"] is None
    assert again.get_json()["created_at"] == endpoint["created_at"]


def test_a_batch_leased_while_disabled_and_enabled_before_it_is_failed_is_sent_not_failed(
        client, app, local, brand, receivers):
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.webhooks import service
    from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint

    receiver = receivers()
    endpoint = register(client, brand["key"], receiver.url).get_json()
    pause(client, brand)
    with app.app_context():
        db.session.get(WebhookEndpoint, endpoint["id"]).disabled_at = utcnow()
        db.session.commit()
        leased = service._lease_batch(endpoint["id"], utcnow())  # a job reads it disabled...
        assert leased is not None and leased.endpoint.disabled_at is not None
    assert client.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable",  # ...and the brand enables it
                       headers=f.auth(brand["key"])).status_code == 200
    with app.app_context():
        assert service._fail_disabled(leased) == 0
        [row] = db.session.scalars(sa.select(WebhookDelivery)).all()
        assert row.status == "pending" and row.leased_until is None
        db.session.rollback()
    deliver_all(local)
    assert len(receiver.received) == 1
