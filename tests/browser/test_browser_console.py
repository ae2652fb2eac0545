"""The admin console in Chromium: the review queue, a bulk approval of 200 submissions by filter,
the brief's money and report, the content bank CSV, and a payout batch watched to the end."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.browsing import DESKTOP, readme_screenshot
from tests.factories import auth, hours_from_now, make_admin
from tests.factories.payouts import earnings, ready_worker
from tests.factories.proofs import png
from tests.factories.reviews import bulk_submissions, review_brief

pytestmark = pytest.mark.browser

FAILED_TEXT = (("text", "fail"), ("timestamp", "pass"))


def _with_screenshots(app, session, submission_ids: list[str]) -> None:
    """Store a real picture for each of these seeded submissions (the queue shows them as thumbnails)."""
    from marketplace.proofs.storage import LocalStorage

    store = LocalStorage(app.config["STORAGE_DIR"])
    rows = [{"id": sid, "key": store.put(png(100 + n))} for n, sid in enumerate(submission_ids)]
    session.execute(sa.text("UPDATE submissions SET screenshot_key = :key WHERE id = :id"), rows)
    session.commit()


def test_admin_bulk_approves_200_submissions_by_filter_and_pays_them_out(
        app, client, runner, standin, db_session, rq_worker, open_page):
    brand_key, brief = review_brief(client, standin, quantity=210, unit_price_cents=100)
    group_id = brief["task_groups"][0]["id"]
    ready = [ready_worker(client, standin) for _ in range(4)]
    worker_ids = [worker["id"] for worker, _, _ in ready]
    # Seeding is not under test: 200 submissions whose checks passed, then 3 newer ones whose
    # text check failed (the filter must leave those alone), in a few set-based statements.
    passed = bulk_submissions(db_session, group_id, worker_ids, 200)
    failed = bulk_submissions(db_session, group_id, worker_ids, 3, checks=FAILED_TEXT)
    _with_screenshots(app, db_session, failed + passed[-5:])
    codes = list(db_session.execute(sa.text(
        "SELECT c.tracked_code FROM claims c JOIN submissions s ON s.claim_id = c.id WHERE s.id = ANY(:ids)"),
        {"ids": passed[:4]}).scalars())
    admin_key = make_admin(runner)

    page = open_page(DESKTOP)
    page.goto("/console/")
    page.fill("#api-key", "not-a-key")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#api-key-error")).to_contain_text("not accepted")
    page.fill("#api-key", admin_key)
    page.click("#login-form button[type=submit]")

    # The queue: newest first, failed checks obvious, thumbnails fetched with the key (blob: URLs).
    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator("#queue tr.has-failure")).to_have_count(3)
    expect(page.locator("#queue tr.has-failure").first).to_contain_text("Failed check")
    expect(page.locator("#queue img.thumb")).to_have_count(8)
    thumb = page.locator("#queue img.thumb").first
    assert thumb.get_attribute("src").startswith("blob:")
    page.wait_for_function("[...document.querySelectorAll('#queue img.thumb')].every(i => i.complete && i.naturalWidth > 0)")
    readme_screenshot(page, "console-review")

    # Only the submissions whose checks all passed, all of them (not just the visible page).
    page.select_option("#filter-check", "all_pass")
    page.click("#review-filters button[type=submit]")
    expect(page.locator("#queue tr.has-failure")).to_have_count(0)
    expect(rows).to_have_count(50)
    page.check("#select-page")
    expect(page.locator("#selection-bar")).to_contain_text("50 selected")
    page.click("#select-all-matching")
    expect(page.locator("#selection-bar")).to_contain_text("Every submission matching this filter is selected")
    expect(page.locator("#decision")).to_have_value("approve")
    page.click("#decision-form button[type=submit]")
    expect(page.locator("#decision-summary")).to_contain_text("Approved 200, rejected 0, revision requested 0.")
    expect(page.locator("#queue tbody")).to_contain_text("Nothing matches this filter.")

    queue = client.get(f"/v1/review/submissions?brief={brief['id']}&limit=500", headers=auth(admin_key)).get_json()
    statuses = {row["id"]: row["status"] for row in queue["data"]}
    assert {statuses[sid] for sid in passed} == {"approved"}
    assert {statuses[sid] for sid in failed} == {"needs_review"}

    # Some results to report on: clicks and conversions on four of the approved tasks' links.
    for n, code in enumerate(codes):
        assert client.get(f"/t/{code}").status_code == 302
        response = client.post("/v1/conversions", headers=auth(brand_key), json={
            "code": code, "value_cents": 2500, "external_id": f"order-{n}", "occurred_at": hours_from_now(-0.01)})
        assert response.status_code in (200, 201), response.get_json()

    # The brief: money and counts, the report with its chart, the content bank as CSV.
    page.get_by_role("link", name="Briefs").click()
    page.get_by_role("link", name=brief["title"]).click()
    expect(page.locator("#brief-money")).to_contain_text("$220.00")  # 200 x (100 + 10% fee)
    expect(page.locator("#groups tbody")).to_contain_text("200")
    expect(page.locator("#report-totals")).to_contain_text("$220.00")
    expect(page.locator("#report-totals")).to_contain_text("$55.00")  # CPA: 22000 / 4 conversions
    expect(page.locator("#chart svg rect")).to_have_count(1)
    expect(page.locator("#chart svg polyline")).to_have_count(1)
    with page.expect_download() as download_info:
        page.click("#download-csv")
    download = download_info.value
    assert download.suggested_filename == f"content-bank-{brief['id']}.csv"
    with open(download.path(), newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(io.StringIO(fh.read())))) == 200
    readme_screenshot(page, "console-report")

    # A payout batch, watched to the end: one transfer per worker. The card money has become
    # available at Stripe by then, as days after funding on live Stripe.
    standin.make_funds_available()
    page.get_by_role("link", name="Payouts").click()
    page.fill("#payout-minimum", "not money")
    page.click("#payout-form button[type=submit]")
    expect(page.locator("#payout-minimum-error")).to_contain_text("amount")
    expect(page.locator("#payout-minimum")).to_have_value("not money")
    page.fill("#payout-minimum", "1.00")
    page.click("#payout-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"#payout/pb_"))
    status = page.locator("#payout-status strong")
    expect(status).to_have_attribute("data-status", "completed", timeout=30_000)
    progress = page.locator("#payout-progress")
    expect(progress).to_have_attribute("aria-valuenow", "4")
    expect(progress).to_have_attribute("aria-valuemax", "4")
    expect(page.locator("#payout-items tbody tr")).to_have_count(4)
    expect(page.locator("#payout-items tbody")).not_to_contain_text("failed")
    # Each worker by name, with the id beside it.
    first_item = page.locator("#payout-items tbody tr").first
    expect(first_item).to_contain_text("Sam")
    expect(first_item).to_contain_text("wrk_")
    page.get_by_role("link", name="Payouts").click()
    expect(page.locator("#batches tbody tr")).to_have_count(1)
    expect(page.locator("#batches tbody")).to_contain_text("4 / 4")
    for _, token, _ in ready:
        assert earnings(client, token)["paid_cents"] == 5000
    assert page.errors == []
