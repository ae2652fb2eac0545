"""Stripe's two webhook endpoints: the platform's and Connect's, each with its own secret, one record of
event ids, one table of handlers; and deliveries that come twice, at once and out of order."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
import stripe

from tests.conftest import CONNECT_WEBHOOK_SECRET, WEBHOOK_SECRET
from tests.factories import auth, fund_brief, sign_up_brand, sign_up_worker, wait_for
from tests.factories.briefs import create_brief
from tests.factories.payouts import follow_onboarding_link, payout_account

PLATFORM, CONNECT = "/v1/webhooks/stripe", "/v1/webhooks/stripe/connect"


def _post(client, path: str, event: dict, secret: str):
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    return client.post(path, data=body.encode(), headers={"Content-Type": "application/json",
                                                          "Stripe-Signature": header})


def _account_event(account_id: str, ready: bool = True) -> dict:
    return {"id": f"evt_{uuid.uuid4().hex}", "type": "account.updated", "created": 1, "account": account_id,
            "data": {"object": {"id": account_id, "object": "account", "payouts_enabled": ready,
                                "details_submitted": ready, "capabilities": {"transfers": "active" if ready
                                                                             else "inactive"}}}}


def test_onboarding_reaches_us_through_the_connect_endpoint(client, standin):
    """The stand-in, like Stripe, sends account.updated of a connected account to the Connect
    endpoint only: without that endpoint, a worker's finished onboarding never arrives."""
    _, token = sign_up_worker(client)
    account = payout_account(client, token)
    follow_onboarding_link(account["onboarding_url"])
    wait_for(lambda: client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"])
    def delivered() -> list[dict]:
        return [e for e in standin.events("account.updated") if e["event"].get("account") == account["account_id"]]

    # The stand-in records the answer once its delivery call returns, which may be after the app acted.
    wait_for(lambda: [e["last_status"] for e in delivered()] == [200])


def test_each_endpoint_takes_only_its_own_secret_and_an_event_is_handled_once(client, app, db_session):
    _, token = sign_up_worker(client)
    account_id = payout_account(client, token)["account_id"]
    event = _account_event(account_id)
    assert _post(client, CONNECT, event, WEBHOOK_SECRET).status_code == 400  # the platform's secret
    assert _post(client, PLATFORM, event, CONNECT_WEBHOOK_SECRET).status_code == 400  # Connect's secret
    assert not client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"]

    first = _post(client, CONNECT, event, CONNECT_WEBHOOK_SECRET)
    assert first.status_code == 200 and first.get_json() == {"received": True, "handled": True}
    assert client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"]
    # The same event id again, on either endpoint, is a replay.
    assert _post(client, CONNECT, event, CONNECT_WEBHOOK_SECRET).get_json()["handled"] is False
    assert _post(client, PLATFORM, event, WEBHOOK_SECRET).get_json()["handled"] is False
    assert db_session.execute(sa.text("SELECT count(*) FROM stripe_events")).scalar_one() == 1


def test_connect_events_are_refused_while_the_connect_secret_is_unset(client, app):
    app.config["STRIPE_CONNECT_WEBHOOK_SECRET"] = None
    try:
        response = _post(client, CONNECT, _account_event("acct_x"), CONNECT_WEBHOOK_SECRET)
        assert response.status_code == 503
        assert "STRIPE_CONNECT_WEBHOOK_SECRET" in response.get_json()["detail"]
    finally:
        app.config["STRIPE_CONNECT_WEBHOOK_SECRET"] = CONNECT_WEBHOOK_SECRET


def test_funding_delivered_twice_at_once_and_out_of_order_is_booked_once(client, standin, db_session):
    standin.set_delivery(duplicate=True, concurrent=True, out_of_order=True)
    try:
        _, key = sign_up_brand(client)
        brief = create_brief(client, key)
        fund_brief(client, key, brief["id"], standin)
        assert standin.wait_for_webhooks()
    finally:
        standin.set_delivery(duplicate=False, concurrent=False, out_of_order=False)
    (delivered,) = standin.events("payment_intent.succeeded")
    assert [d["status"] for d in delivered["deliveries"]] == [200, 200]
    assert db_session.execute(sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'funding'")).scalar_one() == 1


def _post_raw(client, path: str, body: str, secret: str = WEBHOOK_SECRET):
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    return client.post(path, data=body.encode(), headers={"Content-Type": "application/json",
                                                          "Stripe-Signature": header})


def test_a_signed_payload_we_cannot_store_or_read_is_a_400_not_a_500(client, db_session):
    """Signed, so it is no signature problem: a NUL in a string (PostgreSQL cannot store it), JSON
    nested past the parser's limit and a JSON array are each a 400 saying what is wrong, and
    nothing is recorded (Stripe would retry a 500 for days)."""
    nul = json.dumps({"id": "evt_nul", "type": "payment_intent.payment_failed", "created": 1,
                      "data": {"object": {"id": "pi_1", "last_payment_error": {"message": "a\u0000b"}}}})
    deep = '{"id": "evt_deep", "type": "x.y", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for body, says in ((nul, "NUL character"), (deep, "deeply"), ("[1, 2]", "JSON list"), ('"evt"', "JSON str"),
                       ('{"id": 5, "type": "x.y"}', "event object")):
        for path in (PLATFORM, CONNECT):
            secret = WEBHOOK_SECRET if path == PLATFORM else CONNECT_WEBHOOK_SECRET
            answer = _post_raw(client, path, body, secret)
            assert answer.status_code == 400, (path, body[:40], answer.get_json())
            problem = answer.get_json()
            assert problem["type"].endswith("/malformed-event") and says in problem["detail"], problem
    assert db_session.execute(sa.text("SELECT count(*) FROM stripe_events")).scalar_one() == 0


def test_a_bad_signature_is_still_called_one(client):
    answer = _post_raw(client, PLATFORM, '{"id": "evt_x", "type": "x.y"}', "whsec_not_ours")
    assert answer.status_code == 400 and answer.get_json()["type"].endswith("/bad-signature")
