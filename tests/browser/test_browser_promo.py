"""The worker client shows a claim's promo code, beside the tracked link, to copy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.browsing import PHONE, worker_log_in
from tests.factories import live_brief, sign_up_brand, sign_up_worker

pytestmark = pytest.mark.browser

CAPTION = {"kind": "caption", "quantity": 3, "unit_price_cents": 60, "instructions": "Write a caption",
           "proof": {"text": {"min_length": 10, "max_length": 200}}}


def test_a_claim_on_a_promo_brief_shows_its_promo_code_to_copy(client, standin, open_page):
    _, brand_key = sign_up_brand(client, "Northwind Coffee")
    live_brief(client, brand_key, standin, task_groups=[CAPTION], promo_codes=True)
    worker, _ = sign_up_worker(client)
    page = open_page(PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    worker_log_in(page, worker["email"], "correct horse battery")
    page.locator(".task button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"#claim/task_"))
    code = page.locator("#promo-code")
    expect(code).to_have_value(re.compile(r"^NORTHW-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}$"))
    page.locator("#promo-code ~ button").click()
    assert page.evaluate("navigator.clipboard.readText()") == code.input_value()
