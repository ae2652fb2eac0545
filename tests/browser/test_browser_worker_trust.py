"""The worker's trust screens in Chromium at phone width: the profile saved and the reputation
shown, a refused claim naming its rule, a rejection's reason and evidence with its appeal (and the
409s said in words), and the payout history listing a paid batch."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.browsing import PHONE, worker_log_in
from tests.factories import auth, live_brief, make_admin, sign_up_brand, unique_email
from tests.factories import reviews as fr
from tests.factories.clock import wait_for
from tests.factories.payouts import (
    approved_work,
    follow_onboarding_link,
    payout_account,
    run_payout_jobs,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def worker(client, name="Robin", country="GB") -> tuple[dict, str, str]:
    email = unique_email("trust")
    made = client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": name,
                                            "country": country})
    assert made.status_code == 201, made.get_json()
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    return made.get_json(), token, email


def test_worker_edits_the_profile_and_sees_it_saved_with_the_reputation(client, open_page):
    _, token, email = worker(client)
    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    page.get_by_role("link", name="Profile").click()
    expect(page.locator("#reputation [data-stat=approved] .value")).to_have_text("0")
    expect(page.locator("#reputation [data-stat=approval_rate] .value")).to_have_text("—")
    form = page.locator("#profile-form")
    expect(form.get_by_label("Display name")).to_have_value("Robin")

    # A refused code is said beside its field, and what was typed stays.
    form.get_by_label("Country").fill("FR")
    form.get_by_label("Languages you write").fill("fr, zz")
    form.get_by_label("TikTok").fill("@robin.makes")
    form.locator("button[type=submit]").click()
    expect(form.get_by_label("Languages you write")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("TikTok")).to_have_value("@robin.makes")

    form.get_by_label("Languages you write").fill("fr, EN")
    form.locator("button[type=submit]").click()
    expect(page.locator("#profile-saved")).to_be_visible()
    me = client.get("/v1/me", headers=auth(token)).get_json()["worker"]
    assert (me["country"], me["languages"], me["social_accounts"]) == (
        "FR", ["en", "fr"], [{"platform": "tiktok", "handle": "@robin.makes"}])

    page.reload()
    expect(page.locator("#profile-form").get_by_label("Languages you write")).to_have_value("en, fr")
    expect(page.locator("#profile-form").get_by_label("TikTok")).to_have_value("@robin.makes")
    assert page.errors == []


def test_a_refused_claim_shows_the_rule_in_words(client, standin, open_page):
    _, brand_key = sign_up_brand(client)
    live_brief(client, brand_key, standin, task_groups=[
        {"kind": "caption", "quantity": 5, "unit_price_cents": 60, "instructions": "Write a caption",
         "proof": {"text": {"min_length": 5, "max_length": 300}}}])
    me, _, email = worker(client)
    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    expect(page.locator(".task")).to_have_count(1)
    # The brand blocks the worker while the list is on their screen.
    blocked = client.post("/v1/blocked-workers", json={"worker_id": me["id"], "reason": "Off-brief twice"},
                          headers=auth(brand_key))
    assert blocked.status_code == 201, blocked.get_json()

    page.locator(".task button[type=submit]").click()
    refusal = page.locator(".task .refusal")
    expect(refusal).to_have_attribute("data-rule", "blocked")
    expect(refusal).to_contain_text("You can't take this task: Blocked by the brand.")
    expect(refusal).to_contain_text("The brand has blocked you from its tasks.")
    expect(refusal).not_to_contain_text("{")
    expect(page.locator(".task button[type=submit]")).to_have_count(0)
    assert page.errors == []


def test_a_rejection_shows_its_reason_and_is_appealed_and_the_409s_read_as_words(client, runner, standin,
                                                                                 db_session, open_page):
    admin = make_admin(runner)
    _, token, email = worker(client)
    _, brief = fr.review_brief(client, standin, quantity=5)
    first, second, third = fr.submissions(client, db_session, brief, 3, [token])
    decided = client.post("/v1/review/decisions", headers=auth(admin), json={
        "submission_ids": [first, second, third], "decision": "reject", "reason_code": "off_brief",
        "reason": "The caption is about another shoe."})
    assert decided.get_json()["rejected"] == 3

    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    page.get_by_role("link", name="My work").click()
    expect(page.locator("#submission-list .reason-code")).to_have_count(3)
    expect(page.locator("#submission-list .reason-code").first).to_have_text(" (Not what the brief asked for)")
    page.goto(f"/app/#submission/{first}")
    expect(page.locator("#rejection-code")).to_have_text("Reason: Not what the brief asked for")
    expect(page.locator("#rejection-evidence")).to_have_text("The caption is about another shoe.")
    page.locator("#appeal-form").get_by_label("Why should it be approved?").fill("It names the right shoe.")
    page.locator("#appeal-form button[type=submit]").click()
    expect(page.locator("#appeal-status")).to_have_attribute("data-status", "open")
    expect(page.locator("#appeal-status")).to_contain_text("Appeal sent")

    appeal_id = client.get(f"/v1/submissions/{first}/appeal", headers=auth(token)).get_json()["id"]
    assert client.post(f"/v1/appeals/{appeal_id}/decision", headers=auth(admin),
                       json={"decision": "uphold", "reason": "The logo is a competitor's."}).status_code == 200
    page.reload()
    expect(page.locator("#appeal-status")).to_contain_text("Appeal upheld. The rejection stands.")
    expect(page.locator("#appeal-status")).to_contain_text("The logo is a competitor's.")

    # Appealed meanwhile (another tab): the 409 is said in words and the appeal shown.
    page.goto(f"/app/#submission/{second}")
    expect(page.locator("#appeal-form")).to_be_visible()
    assert client.post(f"/v1/submissions/{second}/appeal", json={"message": "From my other phone"},
                       headers=auth(token)).status_code == 201
    page.locator("#appeal-form").get_by_label("Why should it be approved?").fill("Again")
    page.locator("#appeal-form button[type=submit]").click()
    expect(page.locator(".appeal-refused")).to_have_text(
        "You have already appealed this submission: one appeal per submission. Its status is below.")
    expect(page.locator("#appeal-status .appeal-text")).to_have_text("From my other phone")

    # The window ends while the page is open.
    page.goto(f"/app/#submission/{third}")
    expect(page.locator("#appeal-form")).to_be_visible()
    db_session.execute(sa.text("UPDATE submissions SET appealable_until = now() - interval '1 minute' WHERE id = :id"),
                       {"id": third})
    db_session.commit()
    page.locator("#appeal-form").get_by_label("Why should it be approved?").fill("Late")
    page.locator("#appeal-form button[type=submit]").click()
    expect(page.locator(".appeal-refused")).to_have_text(re.compile(r"^The time to appeal this rejection has passed \(it ended .+\)\.$"))
    assert page.errors == []


def test_payout_history_lists_a_paid_batch(app, client, runner, standin, open_page):
    admin = make_admin(runner)
    me, token, email = worker(client)
    follow_onboarding_link(payout_account(client, token)["onboarding_url"])
    wait_for(lambda: client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"])
    approved_work(app, client, standin, [(me["id"], token)], 250)
    batch = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()
    run_payout_jobs(app)

    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    page.get_by_role("link", name="Earnings").click()
    item = page.locator("#payout-list li")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-batch", batch["id"])
    expect(item).to_contain_text("$2.50")
    expect(item).to_contain_text("Paid")
    expect(item).to_contain_text("for 1 submission")
    expect(item.locator(".transfer code")).to_have_text(re.compile(r"^tr_"))
    assert page.errors == []
