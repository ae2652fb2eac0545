"""The worker client in Chromium at phone width: sign up, claim, upload a screenshot, watch the checks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.browsing import PHONE, readme_screenshot
from tests.factories import auth, live_brief, sign_up_brand, unique_email
from tests.factories.proofs import png

pytestmark = pytest.mark.browser

CLIP_GROUP = {
    "kind": "clip", "name": "Unboxing", "quantity": 5, "unit_price_cents": 150,
    "instructions": "Film a 10-second unboxing of the shoe, post it, and screenshot the post.",
    "proof": {"screenshot": "required", "text": {"min_length": 10, "max_length": 200}},
}


def test_worker_signs_up_claims_uploads_a_screenshot_and_sees_checks_pass(client, standin, rq_worker, open_page):
    _, brand_key = sign_up_brand(client)
    live_brief(client, brand_key, standin, task_groups=[CLIP_GROUP])
    page = open_page(PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/app/")

    # A refused sign-up shows the API's message beside the field, and keeps what was typed.
    email = unique_email("phone")
    page.fill("#signup-email", email)
    page.fill("#signup-password", "short")
    page.fill("#signup-name", "Robin")
    page.fill("#signup-country", "GB")
    page.click("#signup-form button[type=submit]")
    expect(page.locator("#signup-password-error")).to_contain_text("10")
    expect(page.locator("#signup-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#signup-email")).to_have_value(email)
    expect(page.locator("#signup-name")).to_have_value("Robin")

    page.fill("#signup-password", "correct horse battery")
    page.click("#signup-form button[type=submit]")

    # Tasks by kind, with price and instructions.
    card = page.locator(".task").first
    expect(card).to_contain_text("clip · Unboxing")
    expect(card).to_contain_text("$1.50")
    expect(card).to_contain_text("Film a 10-second unboxing")
    expect(card).to_contain_text("5 left")
    page.select_option("#kind-filter", "caption")
    expect(page.locator("#task-list")).to_contain_text("No open tasks")
    page.select_option("#kind-filter", "clip")
    expect(page.locator(".task")).to_have_count(1)
    readme_screenshot(page, "worker-tasks")

    page.locator(".task button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"#claim/task_"))
    expect(page.locator(".countdown")).to_have_text(re.compile(r"^(59|60):\d\d left$"))
    tracked = page.locator("#tracked-link")
    expect(tracked).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/t/\S+$"))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == tracked.input_value()
    page.evaluate("window.scrollTo(0, 0)")
    readme_screenshot(page, "worker-claim")

    page.set_input_files("#proof-screenshot", files=[{"name": "IMG_0042.png", "mimeType": "image/png", "buffer": png(42)}])
    expect(page.locator("img.preview")).to_be_visible()
    expect(page.locator("#proof-captured")).not_to_have_value("")
    page.fill("#proof-text", "Lighter shoe, same grip. Loving these! #ad")
    page.evaluate("window.__sameDocument = true")
    page.click("#proof-form button[type=submit]")

    # The submission page polls: validating turns into needs_review with every check passed.
    expect(page).to_have_url(re.compile(r"#submission/sub_"))
    expect(page.locator(".submission-status")).to_have_attribute("data-status", "needs_review", timeout=30_000)
    for name in ("screenshot", "timestamp", "text"):
        expect(page.locator(f'[data-check="{name}"]')).to_have_attribute("data-outcome", "pass")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(page.locator("#submission")).to_contain_text("Approved automatically by")

    submission_id = page.url.rsplit("/", 1)[-1]
    body = client.get(f"/v1/submissions/{submission_id}", headers=auth(brand_key)).get_json()
    assert body["status"] == "needs_review"
    assert body["screenshot_url"]

    # Earnings show the pending task; the payout account is set up from the same page.
    page.get_by_role("link", name="Earnings").click()
    expect(page.locator("#earnings")).to_contain_text("$1.50")
    page.click("#payout-form button[type=submit]")
    expect(page.locator("#payout-account")).to_contain_text("acct_")
    expect(page.get_by_role("link", name="Finish setting up your account at Stripe")).to_be_visible()

    page.get_by_role("link", name="My work").click()
    expect(page.locator("#submission-list")).to_contain_text("needs review")
    assert page.errors == []
