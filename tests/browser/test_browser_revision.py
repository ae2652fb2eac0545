"""A revision round trip in two browsers: the console asks for one (a missing reason is shown
beside its field), the worker reads the reviewer's note and submits again on the same task."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.browsing import DESKTOP, PHONE, console_log_in, worker_log_in
from tests.factories import (
    auth,
    claim,
    hours_from_now,
    live_brief,
    make_admin,
    sign_up_brand,
    unique_email,
    wait_for,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
GROUP = {"kind": "caption", "quantity": 3, "unit_price_cents": 80, "instructions": "A caption about the grip",
         "proof": {"text": {"min_length": 10, "max_length": 300}}}


def test_console_asks_for_a_revision_and_the_worker_submits_again(client, runner, standin, rq_worker, open_page):
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[GROUP])
    email = unique_email("rev")
    client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": "Kim", "country": "GB"})
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    task_id = claim(client, token, brief["task_groups"][0]["id"])["task"]["id"]
    first = client.post(f"/v1/tasks/{task_id}/submissions", headers=auth(token), json={
        "text": "Lighter shoe for spring runs #ad", "captured_at": hours_from_now(0)}).get_json()
    wait_for(lambda: client.get(f"/v1/submissions/{first['id']}", headers=auth(token)).get_json()["status"]
             == "needs_review", timeout=20)

    console = open_page(DESKTOP)
    console_log_in(console, make_admin(runner))
    console.check(f"#queue input[value='{first['id']}']")
    console.select_option("#decision", "request_revision")
    console.fill("#reason", "Mention the grip, please.")
    console.click("#decision-form button[type=submit]")
    expect(console.locator("#reason-code-error")).to_contain_text("reason code is required")
    expect(console.locator("#reason")).to_have_value("Mention the grip, please.")  # nothing typed is lost
    console.select_option("#reason-code", "off_brief")
    console.click("#decision-form button[type=submit]")
    expect(console.locator("#decision-summary")).to_contain_text("revision requested 1")

    worker = open_page(PHONE)
    worker_log_in(worker, email, PASSWORD)
    worker.get_by_role("link", name="My work").click()
    expect(worker.locator("#submission-list")).to_contain_text("revision requested")
    worker.locator("#submission-list a").first.click()
    expect(worker.locator("#reviewer-note")).to_contain_text("off brief")
    expect(worker.locator("#reviewer-note")).to_contain_text("Mention the grip, please.")
    worker.get_by_role("link", name="Submit a revision").click()
    expect(worker).to_have_url(re.compile(rf"#claim/{task_id}$"))
    expect(worker.locator("#claim-title")).to_have_text("Your caption task")
    worker.fill("#proof-text", "Lighter shoe, and the grip holds on wet roads #ad")
    worker.click("#proof-form button[type=submit]")
    expect(worker).to_have_url(re.compile(r"#submission/sub_"))
    assert worker.url.rsplit("/", 1)[-1] != first["id"]
    expect(worker.locator(".submission-status")).to_have_attribute("data-status", "needs_review", timeout=20_000)
    assert console.errors == [] and worker.errors == []
