"""The console's workforce pages in Chromium: suspending and reinstating a worker from their page
(and the audit log showing it), overturning an appeal from the queue (and a 409 shown readably),
and a one-off bonus whose double click, and whose retry after a lost answer, pay once."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.browsing import DESKTOP, console_log_in, readme_screenshot
from tests.factories import auth, claim, make_admin, sign_up_worker
from tests.factories import reviews as fr
from tests.factories.bonuses import bonus_brief
from tests.factories.payouts import approved_work, earnings

pytestmark = pytest.mark.browser


def log_in(page, admin_key: str) -> None:
    """Log in and let the first view (the review queue) draw before going elsewhere: a view still
    waiting for the API when another is chosen draws over it."""
    console_log_in(page, admin_key)
    expect(page.locator("#queue")).to_be_visible()


def api(client, key: str, path: str, **query) -> dict:
    response = client.get(path, headers=auth(key), query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_admin_suspends_then_reinstates_a_worker_from_their_page_and_the_audit_log_shows_it(
        app, client, runner, standin, open_page):
    admin = make_admin(runner)
    worker, token = sign_up_worker(client)
    approved_work(app, client, standin, [(worker["id"], token)], 300)

    page = open_page(DESKTOP)
    log_in(page, admin)
    other, _ = sign_up_worker(client)
    page.get_by_role("link", name="Workers").click()
    expect(page.locator(f"#workers tbody tr[data-id='{other['id']}']")).to_be_visible()
    page.fill("#workers-q", worker["email"][:-12].upper())  # part of the e-mail, any case
    page.click("#workers-filters button[type=submit]")
    row = page.locator(f"#workers tbody tr[data-id='{worker['id']}']")
    expect(page.locator("#workers tbody tr")).to_have_count(1)
    expect(row).to_contain_text("active")
    # Both signed up from the test client, one device: each is the other's signal.
    expect(row.locator("td").nth(6)).to_have_text("1")
    row.get_by_role("link", name="Sam").click()
    expect(page.locator("#worker-status")).to_contain_text("active")
    expect(page.locator("#worker-balances")).to_contain_text("$3.00")
    expect(page.locator("#worker-reputation")).to_contain_text("Approved")
    expect(page.locator("#worker-signals")).to_contain_text("Shares a device with 1 other worker")
    expect(page.locator("#worker-signals").get_by_role("link", name=other["id"])).to_be_visible()

    # A reason is required: nothing is sent without one.
    page.click("#suspend-worker")
    expect(page.locator("#standing-reason-error")).to_contain_text("Say why")
    assert api(client, admin, f"/v1/workers/{worker['id']}")["status"] == "active"
    page.fill("#standing-reason", "Same phone as a banned account")
    page.click("#suspend-worker")
    expect(page.locator("#worker-status [data-status]")).to_have_attribute("data-status", "suspended")
    expect(page.locator("#worker-suspensions tbody tr")).to_have_count(1)
    body = api(client, admin, f"/v1/workers/{worker['id']}")
    assert body["status"] == "suspended"
    assert body["balances"][0]["held_cents"] == 300 and body["balances"][0]["available_cents"] == 0
    # The page shows what the suspension holds.
    held_cell = page.locator("#worker-balances tbody tr td").nth(2)
    expect(held_cell).to_have_text("$3.00")
    readme_screenshot(page, "console-worker")

    page.fill("#standing-reason", "Siblings sharing a phone, checked")
    page.click("#reinstate-worker")
    expect(page.locator("#worker-status [data-status]")).to_have_attribute("data-status", "active")
    expect(page.locator("#worker-suspensions")).to_contain_text("Siblings sharing a phone, checked")
    body = api(client, admin, f"/v1/workers/{worker['id']}")
    assert body["status"] == "active" and body["balances"][0]["available_cents"] == 300

    # The audit log: who, what, when, why — this worker's, then everyone's filtered by action.
    page.get_by_role("link", name="Audit log of this worker").click()
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-action", "worker.reinstated")
    suspended = page.locator("#audit tbody tr[data-action='worker.suspended']")
    expect(suspended).to_contain_text("Same phone as a banned account")
    expect(suspended).to_contain_text("admin:adm_")
    expect(suspended).to_contain_text("held cents")
    page.get_by_role("link", name="Audit log", exact=True).click()
    page.fill("#audit-action", "worker.*")
    page.click("#audit-filters button[type=submit]")
    expect(rows).to_have_count(2)
    readme_screenshot(page, "console-audit")

    # Paged by cursor: 60 older payout-batch events, 50 a page, the rest on "Load more".
    from marketplace.audit import service as audit
    from marketplace.extensions import db

    with app.app_context():
        for n in range(60):
            audit.record(f"admin:adm_{n}", "payout_batch.created", f"pb_{n}", None, {"n": n})
        db.session.commit()
        db.session.remove()
    page.fill("#audit-action", "payout_batch.*")
    page.click("#audit-filters button[type=submit]")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("pb_59")
    page.click("#audit-more")
    expect(rows).to_have_count(60)
    expect(rows.last).to_contain_text("pb_0")
    expect(page.locator("#audit-more")).to_be_hidden()
    assert page.errors == []


def test_an_admin_overturns_an_appeal_from_the_queue_and_sees_a_409_explained(
        client, runner, standin, db_session, open_page):
    admin = make_admin(runner)
    (first, first_token), (second, second_token), (_, other_token) = fr.workers(client, 3)

    def rejected_and_appealed(token: str, quantity: int, message: str) -> tuple[dict, str, str]:
        _, brief = fr.review_brief(client, standin, quantity=quantity)
        [sub_id] = fr.submissions(client, db_session, brief, 1, [token])
        decided = client.post("/v1/review/decisions", headers=auth(admin), json={
            "submission_ids": [sub_id], "decision": "reject", "reason_code": "off_brief",
            "reason": "The caption is about another product."})
        assert decided.status_code == 200, decided.get_json()
        made = client.post(f"/v1/submissions/{sub_id}/appeal", json={"message": message}, headers=auth(token))
        assert made.status_code == 201, made.get_json()
        return brief, sub_id, made.get_json()["id"]

    # The older appeal cannot be paid: its brief's only task went to someone else, nothing to spare.
    brief, stuck_sub, stuck = rejected_and_appealed(first_token, 1, "It names the right shoe.")
    claim(client, other_token, brief["task_groups"][0]["id"])
    second_brief, sub_id, appeal_id = rejected_and_appealed(second_token, 5, "The caption is on brief, look again.")

    page = open_page(DESKTOP)
    log_in(page, admin)
    sent: list[str] = []  # every API request from here on: the page draws from one GET
    page.on("request", lambda r: "/v1/" in r.url and sent.append(f"{r.method} {r.url.split('/v1/', 1)[1]}"))
    page.get_by_role("link", name="Appeals").click()
    cards = page.locator("#appeals article.appeal")
    expect(cards).to_have_count(2)
    expect(cards.first).to_have_attribute("data-id", stuck)  # oldest first
    card = page.locator(f"article.appeal[data-id='{appeal_id}']")
    expect(card.locator(".age")).to_have_text(re.compile(r"^\d+ (s|min)$"))
    expect(card.locator(".reason-code")).to_have_text("off brief")
    expect(card.locator(".reviewer-reason")).to_have_text("The caption is about another product.")
    expect(card.locator(".appeal-message")).to_have_text("The caption is on brief, look again.")
    expect(card.get_by_role("link", name="Sam")).to_have_attribute("href", f"#worker/{second['id']}")
    expect(card.locator(".brief-title")).to_have_text(second_brief["title"])
    assert [r.split("?", 1)[0] for r in sent] == ["GET appeals"], sent

    stuck_card = page.locator(f"article.appeal[data-id='{stuck}']")
    sent.clear()
    stuck_card.get_by_role("button", name="Overturn and approve").click()
    expect(stuck_card.locator(".field-error").first).to_contain_text("Say why")
    stuck_card.locator("textarea").fill("It does name the shoe.")
    stuck_card.get_by_role("button", name="Overturn and approve").click()
    expect(stuck_card.locator(".form-error")).to_contain_text("Could not overturn this appeal")
    expect(stuck_card.locator(".form-error")).to_contain_text("escrow")
    expect(stuck_card).to_have_attribute("data-status", "open")
    readme_screenshot(page, "console-appeals")
    assert api(client, admin, "/v1/appeals", status="open")["data"][0]["id"] == stuck
    assert api(client, first_token, f"/v1/submissions/{stuck_sub}")["status"] == "rejected"

    card.locator("textarea").fill("Checked the post again: it is on brief.")
    card.get_by_role("button", name="Overturn and approve").click()
    card = page.locator(f"article.appeal[data-id='{appeal_id}']")
    expect(card).to_have_attribute("data-status", "overturned")
    expect(card.locator(".decided")).to_contain_text("Checked the post again")
    # The decided card shows the submission as the decision left it, from the POST's own answer.
    expect(card.locator(".evidence")).to_contain_text("now approved")
    expect(card.locator(".reason-code")).to_have_text("off brief")
    decisions = [f"appeals/{stuck}/decision", f"appeals/{appeal_id}/decision"]
    assert sent == [f"POST {path}" for path in decisions], sent  # the empty reason never left the page
    assert api(client, second_token, f"/v1/submissions/{sub_id}")["status"] == "approved"
    assert [a["id"] for a in api(client, admin, "/v1/appeals", status="open")["data"]] == [stuck]
    assert page.errors == []


def test_a_double_clicked_bonus_and_a_retry_after_a_lost_answer_each_pay_once(
        app, client, runner, standin, db_session, open_page):
    admin = make_admin(runner)
    worker, token = sign_up_worker(client)
    brand_key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    before = earnings(client, token)["available_cents"]

    page = open_page(DESKTOP)
    posts: list[str | None] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/v1/bonuses")
            and posts.append(r.headers.get("idempotency-key")))
    log_in(page, admin)
    page.get_by_role("link", name="Bonus").click()
    page.select_option("#bonus-brief", brief_id)
    expect(page.locator("#bonus-unspent")).to_contain_text("$22.00")
    page.fill("#bonus-worker", worker["id"])
    page.fill("#bonus-amount", "5")
    expect(page.locator("#bonus-preview")).to_contain_text("$5.00 (500 in minor units)")
    page.fill("#bonus-reason", "Best clip of the week")
    page.dblclick("#bonus-form button[type=submit]")
    expect(page.locator("#bonus-paid")).to_contain_text("$5.00")
    expect(page.locator("#bonuses tbody tr")).to_have_count(1)
    assert len(posts) == 1 and posts[0]

    # The answer is lost on the way back (the server paid): the retry sends the same key and the
    # server answers with the first payment instead of paying again.
    def lose_answer(route):
        route.fetch()
        route.abort()

    page.route("**/v1/bonuses", lose_answer, times=1)
    page.fill("#bonus-amount", "2.50")
    page.fill("#bonus-reason", "And a second one")
    page.click("#bonus-form button[type=submit]")
    expect(page.locator("#bonus-form .form-error")).to_contain_text("Could not reach the server")
    expect(page.locator("#bonus-amount")).to_have_value("2.50")
    page.click("#bonus-form button[type=submit]")
    expect(page.locator("#bonus-paid")).to_contain_text("$2.50")
    assert len(posts) == 3 and posts[1] == posts[2] != posts[0]

    paid = api(client, admin, "/v1/bonuses", worker=worker["id"])["data"]
    assert sorted(b["amount_cents"] for b in paid) == [250, 500]
    assert earnings(client, token)["available_cents"] == before + 750
    entries = db_session.execute(sa.text(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'bonus' AND ref_id = ANY(:ids)"),
        {"ids": [b["id"] for b in paid]}).scalar_one()
    db_session.commit()
    assert entries == 2
    expect(page.locator("#bonus-unspent")).to_contain_text("$14.50")
    readme_screenshot(page, "console-bonus")

    # A refusal is shown beside its form: more than the brief can spare.
    page.fill("#bonus-amount", "100")
    page.fill("#bonus-reason", "Too generous")
    page.click("#bonus-form button[type=submit]")
    expect(page.locator("#bonus-form .form-error")).not_to_be_empty()
    assert len(api(client, admin, "/v1/bonuses", worker=worker["id"])["data"]) == 2
    assert page.errors == []

    # A brand has the bonus form for its own briefs, and none of the admins' workforce pages.
    brand = open_page(DESKTOP)
    console_log_in(brand, brand_key)
    expect(brand.get_by_role("link", name="Bonus")).to_be_visible()
    for admin_only in ("Workers", "Appeals", "Audit log"):
        expect(brand.get_by_role("link", name=admin_only, exact=True)).to_be_hidden()
    assert brand.errors == []
