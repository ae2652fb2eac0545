"""The console's brand-integration pages in Chromium: a webhook endpoint made in the page (its
secret shown once, gone on reload), a real delivery to a local receiver listed with its status
and duration, Redeliver sending it again; an API key made (shown once), rolled and revoked, the
API refusing it at once."""

from __future__ import annotations

import json

import pytest
import standardwebhooks
from playwright.sync_api import expect

from tests.browser.browsing import PHONE, console_log_in, readme_screenshot
from tests.factories import auth, make_admin, sign_up_brand
from tests.factories.reviews import review_brief
from tests.test_webhooks import Receiver, deliver_all

pytestmark = pytest.mark.browser


@pytest.fixture
def local_hooks(app, monkeypatch):
    """Plain http to loopback allowed (the settings exist for tests), for the live server too."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_HTTP", True)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", "0,0,0")
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT_SECONDS", 2)
    receiver = Receiver()
    yield receiver
    receiver.close()


def _log_in(page, key: str) -> None:
    """Log in and wait for the first view (the review queue): a view chosen while it still loads
    would be drawn over by it when its answers come in."""
    console_log_in(page, key)
    expect(page.locator("#queue")).to_be_visible()


def _stored(page) -> str:
    """Everything the page keeps: its URL and both storages."""
    return page.evaluate("JSON.stringify([location.href, {...sessionStorage}, {...localStorage}])")


def test_an_endpoint_made_in_the_console_shows_its_secret_once_lists_its_delivery_and_redelivers(
        app, client, standin, local_hooks, open_page, caplog):
    receiver = local_hooks
    brand_key, brief = review_brief(client, standin)
    page = open_page(PHONE)
    # Straight on, while the first view (the review queue) still waits for its answers (held back
    # here until then): they must not draw it over this one.
    held = []
    page.route("**/v1/briefs?limit=500", lambda route: held.append(route))
    console_log_in(page, brand_key)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("#no-endpoints")).to_be_visible()
    assert len(held) == 1
    with page.expect_response(lambda response: "/v1/briefs?limit=500" in response.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # time for the review queue's script to act on its answer
    expect(page.locator("#queue")).to_have_count(0)
    expect(page.locator("#endpoint-form")).to_be_visible()

    page.fill("#endpoint-url", "ftp://hooks.example.com/x")
    page.click("#endpoint-form button[type=submit]")
    expect(page.locator("#endpoint-url-error")).not_to_be_empty()
    expect(page.locator("#endpoint-url")).to_have_attribute("aria-invalid", "true")
    page.fill("#endpoint-url", receiver.url)
    page.uncheck("#endpoint-every")
    page.click("#endpoint-form button[type=submit]")
    expect(page.locator("#endpoint-events-error")).to_contain_text("Choose")
    page.check("#endpoint-events-brief-paused")
    page.click("#endpoint-form button[type=submit]")
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.locator("#endpoint-list > li")).to_have_count(1)
    expect(page.locator("#endpoint-list")).to_contain_text("Enabled")
    assert secret not in _stored(page)
    readme_screenshot(page, "console-webhooks")

    page.reload()
    expect(page.locator("#endpoint-list > li")).to_have_count(1)
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content() and secret not in _stored(page)

    # A real event, delivered by a real RQ job to the receiver, signed with the secret the page showed.
    assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=auth(brand_key)).status_code == 200
    deliver_all(app)
    [(headers, body)] = receiver.received
    assert json.loads(body)["type"] == "brief.paused"
    standardwebhooks.Webhook(secret).verify(body, headers)  # raises if the page's secret did not sign it

    page.get_by_role("link", name="Deliveries").click()
    rows = page.locator("#delivery-list > li")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
    expect(rows.first).to_contain_text(headers["webhook-id"])
    expect(rows.first.locator(".event-type")).to_have_text("brief.paused")
    expect(rows.first).to_contain_text("200")
    expect(rows.first).to_contain_text(" ms")

    rows.first.get_by_role("button", name="Redeliver").click()
    expect(page.locator("#redeliver-notice")).to_contain_text("sent again to 1 endpoint")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("[data-status]")).to_have_attribute("data-status", "pending")
    deliver_all(app)  # what the sweep and the workers do; the page looks again while one is pending
    expect(rows.first.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
    assert [h["webhook-id"] for h, _ in receiver.received] == [headers["webhook-id"]] * 2
    readme_screenshot(page, "console-deliveries")

    # Rotating shows the new secret once (the old one signs alongside it for 24 h); deleting empties the list.
    page.get_by_role("link", name="← Webhooks").click()
    page.get_by_role("button", name="Rotate secret").click()
    page.locator("#endpoint-list [data-confirm=yes]").click()
    rotated = page.locator("#new-secret").input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    expect(page.locator("#endpoint-list")).to_contain_text("Old secret also signs until")
    page.get_by_role("button", name="Delete").click()
    page.locator("#endpoint-list [data-confirm=yes]").click()
    expect(page.locator("#no-endpoints")).to_be_visible()
    assert client.get("/v1/webhook-endpoints", headers=auth(brand_key)).get_json()["data"] == []
    assert "POST /v1/webhook-endpoints" in caplog.text  # the live server's request log, as captured
    assert secret not in caplog.text and rotated not in caplog.text  # never carries a secret
    assert page.errors == [] and page.dialogs == []


def test_a_dead_endpoint_shows_its_failed_attempts_and_its_disabled_state(app, client, standin, local_hooks, open_page):
    dead = Receiver(answers=(503,))
    try:
        brand_key, brief = review_brief(client, standin)
        made = client.post("/v1/webhook-endpoints", headers=auth(brand_key), json={"url": dead.url, "events": ["*"]})
        assert made.status_code == 201
        assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=auth(brand_key)).status_code == 200
        deliver_all(app, rounds=4)  # the first attempt and the (short) schedule's three retries
        assert len(dead.received) == 4
    finally:
        dead.close()

    page = open_page(PHONE)
    _log_in(page, brand_key)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("#endpoint-list")).to_contain_text("Disabled")
    expect(page.locator("#endpoint-list")).to_contain_text("failed for the whole retry schedule")
    page.get_by_role("link", name="Deliveries").click()
    delivery = page.locator("#delivery-list > li")
    expect(delivery).to_have_count(1)
    expect(delivery.locator("[data-status]")).to_have_attribute("data-status", "failed")
    expect(delivery).to_contain_text("503")
    expect(delivery.locator(".delivery-error")).to_have_text("answered 503")
    expect(delivery.locator(".attempts li")).to_have_count(4)
    # A disabled endpoint takes nothing more: Redeliver says so rather than pretending.
    delivery.get_by_role("button", name="Redeliver").click()
    expect(page.locator("#redeliver-notice")).to_contain_text("no enabled endpoint takes it")
    assert page.errors == [] and page.dialogs == []


def test_an_api_key_made_in_the_console_is_shown_once_rolls_and_is_refused_at_once_when_revoked(
        client, standin, open_page):
    _, brand_key = sign_up_brand(client)
    page = open_page(PHONE)
    _log_in(page, brand_key)
    page.get_by_role("link", name="API keys").click()
    expect(page.locator("#key-list > li")).to_have_count(1)  # the sign-up key
    expect(page.locator("#key-list")).to_contain_text("This console's key")

    page.fill("#key-name", "shop backend")
    page.uncheck("#key-scopes-briefs-read")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-scopes-error")).to_contain_text("scope")
    page.check("#key-scopes-briefs-read")
    page.click("#key-form button[type=submit]")
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("mk_")
    row = page.locator("#key-list > li", has_text="shop backend")
    expect(row).to_contain_text("briefs:read")
    expect(row).to_contain_text("never")  # never used, never expires
    readme_screenshot(page, "console-api-keys")
    assert client.get("/v1/briefs", headers=auth(secret)).status_code == 200
    assert client.get("/v1/webhook-endpoints", headers=auth(secret)).status_code == 403  # outside its scopes
    page.click("#secret-saved")
    expect(page.locator("#new-secret")).to_have_count(0)
    page.reload()
    expect(row).to_be_visible()
    assert secret not in page.content() and secret not in _stored(page)

    # Roll with no overlap: the old secret stops now, the new one works.
    row.get_by_role("button", name="Roll").click()
    row.locator(".roll-hours").fill("0")
    row.locator("[data-confirm=yes]").click()
    rolled = page.locator("#new-secret").input_value()
    assert rolled.startswith("mk_") and rolled != secret
    assert client.get("/v1/briefs", headers=auth(secret)).status_code == 401
    assert client.get("/v1/briefs", headers=auth(rolled)).status_code == 200

    old_row = page.locator(f'#key-list li[data-prefix="{secret[:11]}"]')
    expect(old_row).to_contain_text("expired")
    new_row = page.locator(f'#key-list li[data-prefix="{rolled[:11]}"]')
    new_row.get_by_role("button", name="Revoke").click()
    new_row.locator("[data-confirm=yes]").click()
    expect(new_row).to_have_count(0)
    assert client.get("/v1/briefs", headers=auth(rolled)).status_code == 401
    assert page.errors == [] and page.dialogs == []


def test_an_admin_is_not_offered_the_brand_pages_and_is_told_why_when_opening_one(runner, open_page):
    page = open_page(PHONE)
    _log_in(page, make_admin(runner))
    expect(page.get_by_role("link", name="Payouts")).to_be_visible()
    expect(page.get_by_role("link", name="Webhooks")).to_be_hidden()
    expect(page.get_by_role("link", name="API keys")).to_be_hidden()
    page.goto("/console/#api-keys")
    expect(page.locator("#keys .form-error")).to_contain_text("brand")
    assert page.errors == []


def test_a_disabled_endpoint_is_enabled_from_the_console_and_gets_its_waiting_delivery(
        app, client, standin, local_hooks, open_page):
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.webhooks.models import WebhookEndpoint

    receiver = local_hooks
    brand_key, brief = review_brief(client, standin)
    made = client.post("/v1/webhook-endpoints", headers=auth(brand_key), json={"url": receiver.url, "events": ["*"]})
    assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=auth(brand_key)).status_code == 200
    with app.app_context():  # its receiver was down long enough: disabled, the event's delivery still waiting
        db.session.get(WebhookEndpoint, made.get_json()["id"]).disabled_at = utcnow()
        db.session.commit()

    page = open_page(PHONE)
    _log_in(page, brand_key)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("#endpoint-list")).to_contain_text("Disabled")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#endpoint-list")).to_contain_text("Enabled")
    expect(page.get_by_role("button", name="Enable")).to_have_count(0)
    [listed] = client.get("/v1/webhook-endpoints", headers=auth(brand_key)).get_json()["data"]
    assert listed["disabled_at"] is None
    deliver_all(app)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["brief.paused"]
    assert page.errors == [] and page.dialogs == []
