"""The worker's notifications in Chromium at phone width: an unread count in the menu, the reason
of a rejection in the feed, a link to the submission, and marking everything read."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.browsing import PHONE, worker_log_in
from tests.factories import auth, make_admin, unique_email
from tests.factories.payouts import approved_work

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_worker_sees_a_rejection_with_its_reason_and_marks_all_read(app, client, runner, standin, open_page):
    email = unique_email("notes")
    worker = client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": "Noa",
                                              "country": "FR"}).get_json()
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    approved_work(app, client, standin, [(worker["id"], token)], 120, status="needs_review")
    sub_id = client.get("/v1/me/submissions", headers=auth(token)).get_json()["data"][0]["id"]
    admin = make_admin(runner)
    decided = client.post("/v1/review/decisions", headers=auth(admin), json={
        "submission_ids": [sub_id], "decision": "reject", "reason_code": "missing_disclosure",
        "reason": "The clip has no #ad on screen."})
    assert decided.status_code == 200 and decided.get_json()["rejected"] == 1

    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    expect(page.locator("#unread-count")).to_have_text("1")

    page.click("a[data-view=notifications]")
    item = page.locator("#notification-list li").first
    expect(item).to_contain_text("Your submission was rejected")
    expect(item).to_contain_text("missing disclosure")
    expect(item).to_contain_text("The clip has no #ad on screen.")
    expect(item).to_contain_text("New")

    page.click("#mark-all-read button[type=submit]")
    expect(page.locator("#unread-count")).to_be_hidden()
    expect(page.locator("#notification-list li").first).not_to_contain_text("New")
    assert client.get("/v1/me/notifications?unread=true", headers=auth(token)).get_json()["data"] == []

    page.locator("#notification-list li a").first.click()
    expect(page).to_have_url(re.compile(rf"#submission/{sub_id}$"))
