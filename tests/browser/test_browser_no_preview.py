"""The console, what a newcomer tripped on: an upload that is no image says "No preview" in its row and the
table keeps its shape, the other rows' thumbnails shown."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.browsing import DESKTOP, console_log_in
from tests.factories import make_admin
from tests.factories.proofs import NOT_AN_IMAGE, png
from tests.factories.reviews import bulk_submissions, review_brief

pytestmark = pytest.mark.browser


def test_an_undecodable_screenshot_shows_no_preview_in_the_review_table(
        app, client, runner, standin, db_session, open_page):
    from marketplace.proofs.storage import LocalStorage

    _, brief = review_brief(client, standin, quantity=5)
    worker_ids = [row for row in db_session.execute(sa.text(
        "INSERT INTO workers (id, email, password_hash, display_name, country, created_at) "
        "VALUES ('wrk_np', 'np@example.com', 'x', 'Np', 'GB', now()) RETURNING id")).scalars()]
    db_session.commit()
    subs = bulk_submissions(db_session, brief["task_groups"][0]["id"], worker_ids, 3)
    store = LocalStorage(app.config["STORAGE_DIR"])
    files = {subs[0]: png(21), subs[1]: NOT_AN_IMAGE, subs[2]: png(22)}
    db_session.execute(sa.text("UPDATE submissions SET screenshot_key = :key WHERE id = :id"),
                       [{"id": sid, "key": store.put(data)} for sid, data in files.items()])
    db_session.commit()

    page = open_page(DESKTOP)
    console_log_in(page, make_admin(runner))
    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator(f"#queue tr[data-id='{subs[1]}']")).to_contain_text("No preview")
    expect(page.locator("#queue img.thumb")).to_have_count(2)
    page.wait_for_function("[...document.querySelectorAll('#queue img.thumb')].every(i => i.complete && i.naturalWidth > 0)")
    for sid in subs:  # every row keeps all its cells
        expect(page.locator(f"#queue tr[data-id='{sid}'] td")).to_have_count(7)


def test_the_console_shows_a_declined_card_on_the_brief(client, runner, standin, open_page):
    from tests.factories import auth, create_brief, sign_up_brand

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    standin.fail_payment_intent(intent["payment_intent_id"])
    assert standin.wait_for_webhooks(10)

    page = open_page(DESKTOP)
    console_log_in(page, make_admin(runner))
    expect(page.locator("#queue")).to_be_visible()  # signed in
    page.evaluate("location.hash = '#briefs'")
    expect(page.locator("#main, main").first).to_contain_text("Payment declined")
    page.click(f"a[href='#brief/{brief['id']}']")
    expect(page.locator("#brief-funding")).to_contain_text("Payment: failed")
    expect(page.locator("#brief-funding")).to_contain_text("Your card was declined. (generic_decline)")
