"""The Stripe stand-in, exercised through the real stripe library over HTTP (no patching)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

from stripe_standin import StripeStandIn, parse_form, sign_payload

SECRET = "whsec_test_standin"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Receiver:
    """A tiny webhook endpoint: records (payload, Stripe-Signature) and answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.status = 200
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cond:
                    receiver.received.append((body, self.headers.get("Stripe-Signature", "")))
                    receiver.cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def events(self, etype: str, count: int = 1, timeout: float = 5.0) -> list[stripe.Event]:
        """Wait for `count` deliveries of `etype`, verifying each signature like the app would."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [stripe.Webhook.construct_event(body, sig, SECRET)
                         for body, sig in self.received if json.loads(body)["type"] == etype]
                if len(found) >= count or time.monotonic() > deadline:
                    return found
                self.cond.wait(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    rec = _Receiver()
    yield rec
    rec.close()


@pytest.fixture()
def standin(receiver):
    server = StripeStandIn(webhook_url=receiver.url, webhook_secret=SECRET,
                           connect_webhook_url=receiver.url + "/connect", connect_webhook_secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture()
def client(standin):
    return stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url},
                               max_network_retries=0)


def _control(standin: StripeStandIn, method: str, path: str, payload: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(standin.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(req, timeout=5) as resp:
        return json.loads(resp.read())


def _fund_platform(client: stripe.StripeClient, standin: StripeStandIn, cents: int = 100_000) -> None:
    """Money in as live: a card charge, then the days until its funds are available."""
    pi = client.v1.payment_intents.create(params={"amount": cents, "currency": "usd"})
    standin.succeed_payment_intent(pi.id)
    standin.make_funds_available()


def _ready_account(client: stripe.StripeClient, standin: StripeStandIn) -> str:
    _fund_platform(client, standin)
    acct = client.v1.accounts.create(params={
        "type": "express", "country": "US", "email": "w@example.com",
        "capabilities": {"transfers": {"requested": True}}, "metadata": {"worker_id": "7"}})
    standin.set_account_ready(acct.id, True)
    return acct.id


# --------------------------------------------------------------------------- payment intents


def test_payment_intent_lifecycle_and_signed_webhook(client, standin, receiver):
    pi = client.v1.payment_intents.create(params={
        "amount": 2500, "currency": "usd", "metadata": {"brief_id": "b1"},
        "automatic_payment_methods": {"enabled": True}, "description": "Brief funding"})
    assert pi.object == "payment_intent" and pi.id.startswith("pi_")
    assert pi.status == "requires_payment_method" and pi.livemode is False
    assert pi.client_secret.startswith(pi.id + "_secret_")
    assert pi.metadata["brief_id"] == "b1"
    assert client.v1.payment_intents.retrieve(pi.id).amount == 2500
    before = standin.balance_totals()

    _control(standin, "POST", f"/_standin/payment_intents/{pi.id}/succeed")

    again = client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert again.status == "succeeded" and again.amount_received == 2500
    assert again.latest_charge.object == "charge" and again.latest_charge.amount == 2500
    # As live: the money arrives pending, less Stripe's fee (2.9% + 30¢), and is not available yet.
    fee = 73 + 30  # 2.9% of 2500 is 72.5, rounded half up
    assert standin.balance_totals() == {"available": before["available"], "pending": before["pending"] + 2500 - fee}
    (event,) = receiver.events("payment_intent.succeeded")
    assert isinstance(event, stripe.Event) and event.id.startswith("evt_")
    assert event.data.object.id == pi.id and event.data.object.metadata["brief_id"] == "b1"
    assert event.livemode is False and event.api_version
    assert standin.wait_for_webhooks()
    log = standin.events("payment_intent.succeeded")
    assert log[0]["last_status"] == 200
    with pytest.raises(stripe.SignatureVerificationError):  # bad signature is rejected
        stripe.Webhook.construct_event(receiver.received[0][0], "t=1,v1=00", SECRET)
    assert len(client.v1.payment_intents.list(params={"limit": 5}).data) == 1


def test_payment_intent_fail_and_cancel(client, standin, receiver):
    pi = client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    standin.fail_payment_intent(pi.id)
    (event,) = receiver.events("payment_intent.payment_failed")
    assert event.data.object.last_payment_error.code == "card_declined"
    canceled = client.v1.payment_intents.cancel(pi.id)
    assert canceled.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.cancel(pi.id)
    assert exc.value.code == "payment_intent_unexpected_state"
    declined = client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    with pytest.raises(stripe.CardError) as card:
        client.v1.payment_intents.confirm(declined.id,
                                          params={"payment_method": "pm_card_chargeDeclined"})
    assert card.value.code == "card_declined"
    ok = client.v1.payment_intents.confirm(declined.id, params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded"


# --------------------------------------------------------------------------- idempotency


def test_idempotent_replay_and_parameter_conflict(client, standin):
    acct = _ready_account(client, standin)
    params = {"amount": 700, "currency": "usd", "destination": acct,
              "transfer_group": "payout_1", "metadata": {"item_id": "i1"}}
    first = client.v1.transfers.create(params=params, options={"idempotency_key": "payout-i1"})
    second = client.v1.transfers.create(params=params, options={"idempotency_key": "payout-i1"})
    assert first.id == second.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert standin.transfer_counts() == {"counts": {"payout-i1": 1}, "total": 1}
    with pytest.raises(stripe.IdempotencyError):
        client.v1.transfers.create(params={**params, "amount": 701},
                                   options={"idempotency_key": "payout-i1"})
    with pytest.raises(stripe.IdempotencyError):  # same key, other endpoint
        client.v1.payment_intents.create(params={"amount": 1, "currency": "usd"},
                                         options={"idempotency_key": "payout-i1"})
    # keys are scoped per API key
    other = stripe.StripeClient("sk_test_other", base_addresses={"api": standin.url},
                                max_network_retries=0)
    third = other.v1.transfers.create(params=params, options={"idempotency_key": "payout-i1"})
    assert third.id != first.id
    assert _control(standin, "GET", "/_standin/transfers/counts")["counts"]["payout-i1"] == 2


def test_business_errors_are_replayed_validation_errors_are_not(client, standin):
    acct = _ready_account(client, standin)
    standin.set_balance(100)
    params = {"amount": 500, "currency": "usd", "destination": acct}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.transfers.create(params=params, options={"idempotency_key": "k-bal"})
        assert exc.value.code == "balance_insufficient"
    assert exc.value.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.transfers.create(params={"currency": "usd", "destination": acct},
                                   options={"idempotency_key": "k-val"})
    assert missing.value.code == "parameter_missing" and missing.value.param == "amount"
    ok = client.v1.transfers.create(params={**params, "amount": 50},
                                    options={"idempotency_key": "k-val"})
    assert ok.amount == 50


def test_a_charge_under_stripes_minimum_is_refused_and_not_saved_under_its_key(client, standin):
    with pytest.raises(stripe.InvalidRequestError) as small:
        client.v1.payment_intents.create(params={"amount": 49, "currency": "usd"}, options={"idempotency_key": "k-min"})
    assert small.value.code == "amount_too_small" and small.value.param == "amount"
    ok = client.v1.payment_intents.create(params={"amount": 50, "currency": "usd"}, options={"idempotency_key": "k-min"})
    assert ok.amount == 50


def test_expiring_idempotency_keys_lets_a_key_make_a_second_object(client, standin):
    """What 24 hours do at Stripe, on demand: the tests of our own guard against that need it."""
    params = {"amount": 700, "currency": "usd"}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-day"})
    assert client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-day"}).id == first.id
    assert standin.expire_idempotency_keys()["forgotten"] >= 1
    assert client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-day"}).id != first.id


def test_idempotency_key_in_use_while_first_request_in_flight(client, standin):
    acct = _ready_account(client, standin)
    standin.set_faults(delay_ms=400, path_prefix="/v1/transfers")
    params = {"amount": 10, "currency": "usd", "destination": acct}
    results: list = []
    slow = threading.Thread(target=lambda: results.append(client.v1.transfers.create(
        params=params, options={"idempotency_key": "busy"})))
    slow.start()
    time.sleep(0.15)
    with pytest.raises(stripe.APIError) as exc:  # stripe-python maps 409 to APIError
        client.v1.transfers.create(params=params, options={"idempotency_key": "busy"})
    assert exc.value.http_status == 409 and exc.value.error.code == "idempotency_key_in_use"
    slow.join(5)
    assert results and standin.transfer_counts()["counts"] == {"busy": 1}


# --------------------------------------------------------------------------- connect + transfers


def test_transfer_requires_active_transfers_capability(client, standin, receiver):
    _fund_platform(client, standin)
    acct = client.v1.accounts.create(params={
        "type": "express", "capabilities": {"transfers": {"requested": True}}})
    assert acct.capabilities.transfers == "inactive" and acct.payouts_enabled is False
    params = {"amount": 100, "currency": "usd", "destination": acct.id}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params=params)
    assert exc.value.code == "insufficient_capabilities_for_transfer"
    _control(standin, "POST", f"/_standin/accounts/{acct.id}/ready")
    assert receiver.events("account.updated")[0].data.object.capabilities.transfers == "active"
    assert client.v1.transfers.create(params=params).destination == acct.id
    standin.set_account_ready(acct.id, False)
    assert client.v1.accounts.retrieve(acct.id).payouts_enabled is False
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.transfers.create(params={**params, "destination": "acct_nope"})
    assert unknown.value.code == "resource_missing" and unknown.value.param == "destination"


def test_account_link_onboarding_completes_account(client, standin, receiver):
    acct = client.v1.accounts.create(params={
        "type": "express", "capabilities": {"transfers": {"requested": True}}})
    link = client.v1.account_links.create(params={
        "account": acct.id, "type": "account_onboarding",
        "refresh_url": "http://app.test/refresh", "return_url": "http://app.test/return"})
    assert link.object == "account_link" and link.expires_at > link.created
    assert link.url.startswith(standin.url)
    req = urllib.request.Request(link.url)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(req, timeout=5)
    assert redirect.value.code == 303
    assert redirect.value.headers["Location"] == "http://app.test/return"
    updated = client.v1.accounts.retrieve(acct.id)
    assert updated.capabilities.transfers == "active" and updated.payouts_enabled
    assert updated.details_submitted and updated.requirements.currently_due == []
    assert receiver.events("account.updated")[0].account == acct.id
    edited = client.v1.accounts.update(acct.id, params={"metadata": {"tier": "gold"}})
    assert edited.metadata["tier"] == "gold"
    assert [a.id for a in client.v1.accounts.list().data] == [acct.id]


def test_balance_moves_with_transfers_reversals_and_runs_out(client, standin, receiver):
    acct = _ready_account(client, standin)
    standin.set_balance(1000)
    assert client.v1.balance.retrieve().available[0].amount == 1000
    tr = client.v1.transfers.create(params={"amount": 600, "currency": "usd",
                                            "destination": acct})
    assert client.v1.balance.retrieve().available[0].amount == 400
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 401, "currency": "usd",
                                           "destination": acct})
    assert exc.value.code == "balance_insufficient"
    rev = client.v1.transfers.reversals.create(tr.id, params={"amount": 200})
    assert rev.object == "transfer_reversal" and rev.amount == 200 and rev.transfer == tr.id
    tr = client.v1.transfers.retrieve(tr.id)
    assert tr.amount_reversed == 200 and tr.reversed is False
    assert client.v1.balance.retrieve().available[0].amount == 600
    client.v1.transfers.reversals.create(tr.id)  # the rest
    assert client.v1.transfers.retrieve(tr.id).reversed is True
    assert client.v1.balance.retrieve().available[0].amount == 1000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(tr.id, params={"amount": 1})
    assert len(receiver.events("transfer.reversed", 2)) == 2
    assert receiver.events("transfer.created")[0].data.object.id == tr.id
    connected = client.v1.balance.retrieve(options={"stripe_account": acct})
    assert connected.available[0].amount == 0


def test_transfers_list_filters_and_pagination(client, standin):
    acct = _ready_account(client, standin)
    other = _ready_account(client, standin)
    ids = [client.v1.transfers.create(params={
        "amount": 10 + i, "currency": "usd", "destination": acct, "transfer_group": "batch_1",
        "metadata": {"item_id": f"i{i}"}}).id for i in range(5)]
    client.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": other,
                                       "transfer_group": "batch_2"})
    page = client.v1.transfers.list(params={"transfer_group": "batch_1", "limit": 2})
    assert page.object == "list" and page.url == "/v1/transfers" and page.has_more
    assert [t.id for t in page.data] == ids[::-1][:2]  # newest first
    assert page.data[0].metadata["item_id"] == "i4"
    nxt = client.v1.transfers.list(params={"transfer_group": "batch_1", "limit": 2,
                                           "starting_after": page.data[-1].id})
    assert [t.id for t in nxt.data] == ids[::-1][2:4] and nxt.has_more
    assert [t.id for t in page.auto_paging_iter()] == ids[::-1]
    assert len(client.v1.transfers.list(params={"destination": other}).data) == 1
    updated = client.v1.transfers.update(ids[0], params={"metadata": {"note": "x"}})
    assert updated.metadata.to_dict() == {"item_id": "i0", "note": "x"}


def test_drop_after_commit_then_retry_with_same_key(client, standin):
    acct = _ready_account(client, standin)
    params = {"amount": 300, "currency": "usd", "destination": acct, "transfer_group": "g-drop"}
    _control(standin, "POST", "/_standin/faults",
             {"drop_after_commit": 1, "path_prefix": "/v1/transfers"})
    with pytest.raises(stripe.APIConnectionError):
        client.v1.transfers.create(params=params, options={"idempotency_key": "drop-1"})
    listed = client.v1.transfers.list(params={"transfer_group": "g-drop"})
    assert len(listed.data) == 1  # it did go through
    retried = client.v1.transfers.create(params=params, options={"idempotency_key": "drop-1"})
    assert retried.id == listed.data[0].id
    assert standin.transfer_counts() == {"counts": {"drop-1": 1}, "total": 1}


def test_a_500_is_saved_under_its_key_and_replayed_as_stripe_does(client, standin):
    """Stripe saves a request's result whatever it is, a 500 included: the same key answers the
    same 500 for 24 hours, and only another key makes the transfer."""
    acct = _ready_account(client, standin)
    standin.set_faults(fail_before_commit=1, path_prefix="/v1/transfers")
    params = {"amount": 5, "currency": "usd", "destination": acct}
    with pytest.raises(stripe.APIError) as exc:
        client.v1.transfers.create(params=params, options={"idempotency_key": "f-1"})
    assert exc.value.http_status == 500
    assert standin.transfer_counts()["total"] == 0
    with pytest.raises(stripe.APIError) as again:
        client.v1.transfers.create(params=params, options={"idempotency_key": "f-1"})
    assert again.value.http_status == 500 and again.value.headers.get("Idempotent-Replayed") == "true"
    assert client.v1.transfers.create(params=params, options={"idempotency_key": "f-2"}).id
    assert standin.transfer_counts()["counts"] == {"f-2": 1}


# --------------------------------------------------------------------------- refunds, checkout


def test_refunds_partial_full_and_too_large(client, standin, receiver):
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):  # nothing captured yet
        client.v1.refunds.create(params={"payment_intent": pi.id})
    standin.succeed_payment_intent(pi.id)
    balance = standin.balance_totals()
    part = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300,
                                            "reason": "requested_by_customer",
                                            "metadata": {"why": "partial"}})
    assert part.object == "refund" and part.status == "succeeded" and part.amount == 300
    # Nothing is available yet: the refund comes out of the pending funds, and Stripe keeps its fee.
    assert standin.balance_totals() == {"available": 0, "pending": balance["pending"] - 300}
    with pytest.raises(stripe.InvalidRequestError) as too_large:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 701})
    assert too_large.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert rest.amount == 700
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert again.value.code == "charge_already_refunded"
    assert client.v1.refunds.retrieve(part.id).metadata["why"] == "partial"
    assert len(client.v1.refunds.list(params={"payment_intent": pi.id}).data) == 2
    assert receiver.events("charge.refunded", 2)[-1].data.object.refunded is True
    assert len(receiver.events("refund.created", 2)) == 2


def test_checkout_session_complete_emits_events(client, standin, receiver):
    cs = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "http://app.test/ok?cs={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://app.test/cancel", "client_reference_id": "brief_9",
        "metadata": {"brief_id": "9"},
        "payment_intent_data": {"metadata": {"brief_id": "9"}},
        "line_items": [{"quantity": 2, "price_data": {
            "currency": "usd", "unit_amount": 1250, "product_data": {"name": "Brief"}}}]})
    assert cs.object == "checkout.session" and cs.id.startswith("cs_test_")
    assert cs.status == "open" and cs.payment_status == "unpaid" and cs.amount_total == 2500
    assert cs.url.startswith(standin.url) and cs.payment_intent is None
    done = _control(standin, "POST", f"/_standin/checkout/sessions/{cs.id}/complete")
    assert done["status"] == "complete"
    (event,) = receiver.events("checkout.session.completed")
    assert event.data.object.client_reference_id == "brief_9"
    assert event.data.object.payment_status == "paid"
    (pi_event,) = receiver.events("payment_intent.succeeded")
    assert pi_event.data.object.metadata["brief_id"] == "9"
    fetched = client.v1.checkout.sessions.retrieve(cs.id, params={"expand": ["payment_intent"]})
    assert fetched.payment_intent.amount_received == 2500
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.create(params={"mode": "payment"})
    assert missing.value.param == "line_items"


# --------------------------------------------------------------------------- errors, events, misc


def test_error_shapes(client, standin):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.retrieve("tr_missing")
    assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    assert exc.value.error.doc_url.endswith("resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as bad_int:
        client.v1.payment_intents.create(params={"amount": "abc", "currency": "usd"})
    assert bad_int.value.code == "parameter_invalid_integer"
    bad = stripe.StripeClient("rk_live_nope", base_addresses={"api": standin.url},
                              max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.balance.retrieve()


def test_custom_events_resend_and_delivery_log(client, standin, receiver):
    acct = _ready_account(client, standin)
    receiver.status = 500
    evt = _control(standin, "POST", "/_standin/events", {
        "type": "payout.failed", "account": acct,
        "object": {"amount": 900, "currency": "usd", "destination": "ba_123",
                   "failure_code": "account_closed", "status": "failed"}})
    assert evt["data"]["object"]["object"] == "payout" and evt["account"] == acct
    assert standin.wait_for_webhooks()
    log = _control(standin, "GET", "/_standin/events?type=payout.failed")["data"]
    assert log[0]["last_status"] == 500
    receiver.status = 200
    standin.resend_event(evt["id"])
    assert standin.wait_for_webhooks()
    assert [d["status"] for d in standin.events("payout.failed")[0]["deliveries"]] == [500, 200]
    sent = receiver.events("payout.failed", 2)
    assert [e.id for e in sent] == [evt["id"], evt["id"]]
    assert sent[0].data.object.failure_code == "account_closed"
    tr = client.v1.transfers.create(params={"amount": 1, "currency": "usd", "destination": acct})
    reversed_evt = standin.emit_event("transfer.reversed", {"id": tr.id, "reversed": True})
    assert reversed_evt["data"]["object"]["destination"] == acct  # filled from state
    assert client.v1.events.retrieve(evt["id"]).type == "payout.failed"


def test_stats_reset_and_http_controls(client, standin):
    client.v1.balance.retrieve()
    stats = _control(standin, "GET", "/_standin/requests")
    assert stats["count"] >= 1 and stats["median_ms"] is not None
    assert "GET /v1/balance" in stats["by_route"]
    assert _control(standin, "POST", "/_standin/balance", {"amount": 42})["available"][0][
        "amount"] == 42
    assert _control(standin, "POST", "/_standin/reset", {}) == {"reset": True}
    assert standin.balance() == 0  # as a live account starts
    assert standin.request_stats()["count"] == 0


def test_parse_form_and_signature_helper():
    assert parse_form("metadata[item_id]=x&expand[]=a&expand[]=b&"
                      "line_items[0][price_data][unit_amount]=5&amount=3") == {
        "metadata": {"item_id": "x"}, "expand": ["a", "b"], "amount": "3",
        "line_items": [{"price_data": {"unit_amount": "5"}}]}
    header = sign_payload('{"a":1}', SECRET, timestamp=1700000000)
    assert header == stripe.WebhookSignature.generate_signature_header(
        '{"a":1}', SECRET, timestamp=1700000000)


def test_cli_runs_in_foreground_and_never_logs_secrets(tmp_path: Path):
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_standin", "--port", "0",
         "--webhook-secret", "whsec_supersecret"],
        cwd=root, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    # The request line is logged after the response is sent: read stderr as it comes.
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    try:
        first = proc.stderr.readline()
        lines.append(first)
        reader.start()
        url = first.split(" on ", 1)[1].split()[0]
        cli = stripe.StripeClient("sk_test_topsecretkey", base_addresses={"api": url},
                                  max_network_retries=0)
        assert cli.v1.balance.retrieve().object == "balance"
        deadline = time.monotonic() + 10
        while not any("GET /v1/balance -> 200" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        reader.join(timeout=5)
    logged = "".join(lines)
    assert "GET /v1/balance -> 200" in logged
    assert "topsecretkey" not in logged and "supersecret" not in logged


# --------------------------------------------------------------------------- live money timing


def test_the_platform_starts_at_zero_and_card_money_is_pending_less_the_fee(client, standin):
    assert standin.balance_totals() == {"available": 0, "pending": 0}
    pi = client.v1.payment_intents.create(params={"amount": 10_000, "currency": "usd"})
    standin.succeed_payment_intent(pi.id)
    charge = client.v1.payment_intents.retrieve(
        pi.id, params={"expand": ["latest_charge.balance_transaction"]}).latest_charge
    txn = charge.balance_transaction
    assert (txn.type, txn.amount, txn.fee, txn.net, txn.status) == ("charge", 10_000, 320, 9_680, "pending")
    assert txn.available_on >= txn.created + 2 * 86_400 - 5
    balance = client.v1.balance.retrieve()
    assert (balance.available[0].amount, balance.pending[0].amount) == (0, 9_680)
    standin.advance_time(days=1)
    assert standin.balance_totals() == {"available": 0, "pending": 9_680}
    standin.advance_time(days=1)
    assert standin.balance_totals() == {"available": 9_680, "pending": 0}
    assert client.v1.balance_transactions.retrieve(txn.id).status == "available"
    listed = client.v1.balance_transactions.list(params={"type": "charge"}).data
    assert [t.source for t in listed] == [charge.id]


def test_a_transfer_of_pending_money_fails_unless_tied_to_its_charge(client, standin):
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}}})
    standin.set_account_ready(acct.id, True)
    pi = client.v1.payment_intents.create(params={"amount": 1_000, "currency": "usd"})
    standin.succeed_payment_intent(pi.id)
    charge_id = client.v1.payment_intents.retrieve(pi.id).latest_charge
    params = {"amount": 600, "currency": "usd", "destination": acct.id}
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.create(params=params)
    assert short.value.code == "balance_insufficient"
    tied = client.v1.transfers.create(params={**params, "source_transaction": charge_id})
    assert tied.source_transaction == charge_id
    assert standin.balance_totals() == {"available": 0, "pending": 1_000 - 59 - 600}
    with pytest.raises(stripe.InvalidRequestError) as beyond:  # no more than the charge brought in
        client.v1.transfers.create(params={**params, "source_transaction": charge_id})
    assert beyond.value.param == "source_transaction"
    with pytest.raises(stripe.InvalidRequestError) as bogus:
        client.v1.transfers.create(params={**params, "source_transaction": "ch_nope"})
    assert bogus.value.code == "resource_missing"


def test_unknown_parameters_and_currencies_are_refused_as_stripe_does(client, standin):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_intents.create(params={"amount": 1_000, "currency": "usd", "amount_cents": 1_000})
    assert (unknown.value.http_status, unknown.value.code, unknown.value.param) == (400, "parameter_unknown",
                                                                                   "amount_cents")
    with pytest.raises(stripe.InvalidRequestError) as listed:
        client.v1.transfers.list(params={"transfer_grup": "b1"})
    assert listed.value.code == "parameter_unknown"
    for currency in ("xyz", "dollars"):
        with pytest.raises(stripe.InvalidRequestError) as bad:
            client.v1.payment_intents.create(params={"amount": 1_000, "currency": currency})
        assert bad.value.http_status == 400 and bad.value.param == "currency"
    # Everything the gateway sends is known.
    assert client.v1.payment_intents.create(params={
        "amount": 1_000, "currency": "eur", "metadata": {"a": "b"}, "description": "d",
        "automatic_payment_methods": {"enabled": True}}).currency == "eur"


def test_connect_events_go_to_the_connect_endpoint_with_its_own_secret(client):
    platform, connect = _Receiver(), _Receiver()
    server = StripeStandIn(webhook_url=platform.url, webhook_secret=SECRET,
                           connect_webhook_url=connect.url, connect_webhook_secret="whsec_connect").start()
    try:
        cli = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url}, max_network_retries=0)
        acct = cli.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}}})
        server.set_account_ready(acct.id, True)
        pi = cli.v1.payment_intents.create(params={"amount": 1_000, "currency": "usd"})
        server.succeed_payment_intent(pi.id)
        assert server.wait_for_webhooks()
        assert [json.loads(b)["type"] for b, _ in connect.received] == ["account.updated"]
        assert [json.loads(b)["type"] for b, _ in platform.received] == ["payment_intent.succeeded"]
        body, signature = connect.received[0]
        assert stripe.Webhook.construct_event(body, signature, "whsec_connect").account == acct.id
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, signature, SECRET)
    finally:
        server.stop()
        platform.close()
        connect.close()


def test_deliveries_can_come_twice_at_once_and_newest_first(client, standin, receiver):
    standin.set_delivery(duplicate=True, concurrent=True, out_of_order=True)
    ids = [standin.emit_event("payment_intent.canceled", {"n": str(n)})["id"] for n in range(3)]
    assert standin.wait_for_webhooks()
    got = [json.loads(b)["id"] for b, _ in receiver.received]
    assert sorted(got) == sorted(ids * 2)  # each twice
    assert got != sorted(got, key=ids.index)  # not in the order they happened
    assert _control(standin, "POST", "/_standin/webhook/delivery", {"duplicate": False, "concurrent": False,
                                                                     "out_of_order": False}) == {
        "duplicate": False, "concurrent": False, "out_of_order": False}
