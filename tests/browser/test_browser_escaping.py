"""User text is shown as text: a caption, a brief's title and instructions and a worker's name
carrying markup render literally in the console and the worker client, and no script runs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.browsing import DESKTOP, PHONE, console_log_in, worker_log_in
from tests.factories import (
    auth,
    claim,
    live_brief,
    make_admin,
    sign_up_brand,
    unique_email,
    wait_for,
)

pytestmark = pytest.mark.browser

CAPTION = "<img src=x onerror=alert(1)>"
TITLE = "<img src=x onerror=alert('title')> launch"
INSTRUCTIONS = "<script>alert('instructions')</script> Write a caption"
NAME = "<b onmouseover=alert(3)>Sam</b>"
PASSWORD = "correct horse battery"


REASON = "<img src=x onerror=alert('reason')> wrong shoe"
EVIDENCE = "<img src=x onerror=alert('evidence')> read on the image"
APPEAL = "<script>alert('appeal')</script> it is the right shoe"
DECISION = "<svg onload=alert('decision')></svg> the logo is another brand's"


def test_markup_in_rejections_appeals_and_the_profile_renders_as_text(app, client, runner, standin, db_session,
                                                                      open_page):
    """The worker's trust screens: a reviewer's reason, a check's evidence, the worker's own appeal
    and the admin's decision, and a display name, each carrying markup, shown literally."""
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle
    from marketplace.proofs.models import Submission
    from tests.factories import reviews as fr

    admin_key = make_admin(runner)
    email = unique_email("xss-trust")
    assert client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": NAME,
                                            "country": "GB"}).status_code == 201
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    _, brief = fr.review_brief(client, standin, quantity=5)
    [rejected] = fr.submissions(client, db_session, brief, 1, [token])
    [checked] = fr.submissions(client, db_session, brief, 1, [token], status="validating")
    assert client.post("/v1/review/decisions", headers=auth(admin_key), json={
        "submission_ids": [rejected], "decision": "reject", "reason_code": "off_brief", "reason": REASON,
    }).get_json()["rejected"] == 1
    with app.app_context():
        lifecycle.auto_reject([db.session.get(Submission, checked, with_for_update=True)],
                              {checked: [{"check": "screenshot", "detail": EVIDENCE}]})
        db.session.commit()
        db.session.remove()
    made = client.post(f"/v1/submissions/{rejected}/appeal", json={"message": APPEAL}, headers=auth(token))
    assert made.status_code == 201
    assert client.post(f"/v1/appeals/{made.get_json()['id']}/decision", headers=auth(admin_key),
                       json={"decision": "uphold", "reason": DECISION}).status_code == 200

    page = open_page(PHONE)
    worker_log_in(page, email, PASSWORD)
    expect(page.locator("#nav")).to_be_visible()
    page.goto(f"/app/#submission/{rejected}")
    expect(page.locator("#rejection-evidence")).to_have_text(REASON)
    expect(page.locator("#appeal-status .appeal-text")).to_have_text(APPEAL)
    expect(page.locator("#appeal-status .decision-reason")).to_have_text(f"Why: {DECISION}")
    page.goto(f"/app/#submission/{checked}")
    expect(page.locator("#rejection-evidence li")).to_have_text(f"screenshot: {EVIDENCE}")
    page.goto("/app/#appeals")
    expect(page.locator("#appeal-list .appeal-text")).to_have_text(APPEAL)
    page.goto("/app/#profile")
    expect(page.locator("#profile-form").get_by_label("Display name")).to_have_value(NAME)

    page.mouse.move(10, 10)
    assert page.locator("img[src='x'], #main script, #main svg, [onerror], [onload], [onmouseover]").count() == 0
    assert page.dialogs == []
    assert page.errors == []


def test_markup_in_user_text_renders_as_text_and_never_runs(client, runner, standin, rq_worker, open_page):
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, title=TITLE, task_groups=[
        {"kind": "caption", "quantity": 5, "unit_price_cents": 60, "instructions": INSTRUCTIONS,
         "proof": {"text": {"min_length": 5, "max_length": 300}}}])
    email = unique_email("xss")
    assert client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": NAME,
                                            "country": "GB"}).status_code == 201
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    held = claim(client, token, brief["task_groups"][0]["id"])
    response = client.post(f"/v1/tasks/{held['task']['id']}/submissions", json={"text": CAPTION}, headers=auth(token))
    assert response.status_code == 202, response.get_json()
    admin_key = make_admin(runner)
    submission_id = response.get_json()["id"]
    # The queue's default filter is "needs review": let the worker process validate first.
    wait_for(lambda: client.get(f"/v1/submissions/{submission_id}", headers=auth(token))
             .get_json()["status"] != "validating", timeout=30)

    console = open_page(DESKTOP)
    console_log_in(console, admin_key)
    # Filter only once the review view has rendered its table, or the choice is lost on render.
    expect(console.locator("#queue")).to_be_visible()
    console.select_option("#filter-status", index=0)  # any status
    console.click("#review-filters button[type=submit]")
    expect(console.locator("#queue .proof-text")).to_have_text(CAPTION)
    expect(console.locator("#queue tbody")).to_contain_text(NAME)
    expect(console.locator("#filter-brief option", has_text=TITLE)).to_have_count(1)
    console.get_by_role("link", name="Briefs").click()
    expect(console.get_by_role("link", name=TITLE)).to_be_visible()

    worker = open_page(PHONE)
    worker_log_in(worker, email, PASSWORD)
    expect(worker.locator(".task .hint").first).to_have_text(TITLE)
    expect(worker.locator(".task .instructions")).to_have_text(INSTRUCTIONS)
    worker.get_by_role("link", name="My work").click()
    worker.locator("#submission-list a").first.click()
    expect(worker.locator("#submission .proof-text")).to_have_text(CAPTION)

    for page in (console, worker):
        page.mouse.move(10, 10)
        assert page.locator("img[src='x'], #main script, [onerror], [onmouseover]").count() == 0
        assert page.dialogs == []
        assert page.errors == []


SUSPEND_REASON = "<img src=x onerror=alert('suspend')> same phone"
REVIEW_REASON = "<script>alert('review')</script> off brief"
APPEAL_MESSAGE = "<svg onload=alert('appeal')>It is on brief</svg>"
BONUS_REASON = "<a href=javascript:alert('bonus')>thanks</a>"


def test_markup_in_workers_appeals_bonuses_and_the_audit_log_renders_as_text(
        app, client, runner, standin, db_session, open_page):
    from tests.factories import reviews as fr
    from tests.factories.bonuses import bonus_brief, pay

    admin_key = make_admin(runner)
    email = unique_email("xss")
    made = client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": NAME, "country": "GB"})
    assert made.status_code == 201
    worker_id = made.get_json()["id"]
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    _, brief = fr.review_brief(client, standin, quantity=5)
    [rejected] = fr.submissions(client, db_session, brief, 1, [token])
    _, bonus_brief_id = bonus_brief(app, client, standin, [(worker_id, token)])
    assert client.post("/v1/review/decisions", headers=auth(admin_key), json={
        "submission_ids": [rejected], "decision": "reject", "reason_code": "off_brief",
        "reason": REVIEW_REASON}).status_code == 200
    assert client.post(f"/v1/submissions/{rejected}/appeal", json={"message": APPEAL_MESSAGE},
                       headers=auth(token)).status_code == 201
    assert pay(client, admin_key, bonus_brief_id, worker_id, 10, reason=BONUS_REASON).status_code == 201
    assert client.post(f"/v1/workers/{worker_id}/suspend", json={"reason": SUSPEND_REASON},
                       headers=auth(admin_key)).status_code == 200

    console = open_page(DESKTOP)
    console_log_in(console, admin_key)
    expect(console.locator("#queue")).to_be_visible()
    console.get_by_role("link", name="Workers").click()
    expect(console.get_by_role("link", name=NAME)).to_be_visible()
    console.get_by_role("link", name=NAME).click()
    expect(console.locator("h2")).to_have_text(NAME)
    expect(console.locator("#worker-suspensions")).to_contain_text(SUSPEND_REASON)
    console.get_by_role("link", name="Pay a bonus").click()
    expect(console.locator("#bonuses tbody")).to_contain_text(BONUS_REASON)
    console.get_by_role("link", name="Appeals").click()
    expect(console.locator(".appeal-message")).to_have_text(APPEAL_MESSAGE)
    expect(console.locator(".reviewer-reason")).to_have_text(REVIEW_REASON)
    console.get_by_role("link", name="Audit log", exact=True).click()
    expect(console.locator("#audit tbody")).to_contain_text(SUSPEND_REASON)
    expect(console.locator("#audit tbody")).to_contain_text(BONUS_REASON)

    console.mouse.move(10, 10)
    assert console.locator("img[src='x'], #main script, #main svg, [onerror], [onload], [onmouseover], "
                           "a[href^='javascript']").count() == 0
    assert console.dialogs == []
    assert console.errors == []


KEY_NAME = "<img src=x onerror=alert('key')>"
HOOK_URL = "https://hooks.example.com/<svg/onload=alert('hook')>"  # a URL takes no spaces


def test_markup_in_a_key_name_and_an_endpoint_url_renders_as_text_on_the_integration_pages(client, open_page):
    _, brand_key = sign_up_brand(client)
    made = client.post("/v1/api-keys", headers=auth(brand_key), json={"name": KEY_NAME, "scopes": ["briefs:read"]})
    assert made.status_code == 201, made.get_json()
    hook = client.post("/v1/webhook-endpoints", headers=auth(brand_key), json={"url": HOOK_URL, "events": ["*"]})
    assert hook.status_code == 201, hook.get_json()
    stored_url = hook.get_json()["url"]  # the API stores it percent-encoded; the page shows it as stored

    console = open_page(PHONE)
    console_log_in(console, brand_key)
    expect(console.locator("#queue")).to_be_visible()  # the first view, drawn before moving on
    console.get_by_role("link", name="API keys").click()
    expect(console.locator("#key-list .key-name", has_text="alert('key')").first).to_contain_text(KEY_NAME)
    console.get_by_role("link", name="Webhooks").click()
    expect(console.locator("#endpoint-list code")).to_have_text(stored_url)
    console.get_by_role("link", name="Deliveries").click()
    expect(console.locator("#delivery-endpoint code")).to_have_text(stored_url)

    console.mouse.move(10, 10)
    assert console.locator("img[src='x'], #main script, #main svg, [onerror], [onload]").count() == 0
    assert console.dialogs == []
    assert console.errors == []
