"""Promo codes: a brief that asks for them gives each claim a unique, readable code; brands report
sales by it (no click needed); reports and the content bank show it."""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.factories import auth, claim, create_brief, live_brief, sign_up_brand, sign_up_worker
from tests.factories.tracking import approve

CODE_RE = re.compile(r"^[A-Z]{1,6}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}$")


def group(quantity: int = 10, **over) -> dict:
    return {"kind": "caption", "quantity": quantity, "unit_price_cents": 60, "instructions": "Write a caption",
            "proof": {"text": {"min_length": 20, "max_length": 300}}, **over}


def promo_brief(client, standin, *, brand: str = "Northwind Coffee", promo: bool = True, quantity: int = 10,
                **over) -> tuple[dict, str]:
    _, key = sign_up_brand(client, brand)
    return live_brief(client, key, standin, promo_codes=promo, task_groups=[group(quantity)], **over), key


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    assert response.content_type == "application/problem+json"
    return response.get_json()


# --- the brief field ----------------------------------------------------------------------------


def test_a_brief_says_whether_it_has_promo_codes_on_create_and_read(client):
    _, key = sign_up_brand(client)
    with_codes = create_brief(client, key, promo_codes=True)
    assert with_codes["promo_codes"] is True
    assert client.get(f"/v1/briefs/{with_codes['id']}", headers=auth(key)).get_json()["promo_codes"] is True
    without = create_brief(client, key)  # left out: none
    assert without["promo_codes"] is False
    assert client.get(f"/v1/briefs/{without['id']}", headers=auth(key)).get_json()["promo_codes"] is False
    listed = {b["id"]: b["promo_codes"] for b in client.get("/v1/briefs", headers=auth(key)).get_json()["data"]}
    assert listed == {with_codes["id"]: True, without["id"]: False}


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_promo_codes_must_be_a_boolean(client, value):
    _, key = sign_up_brand(client)
    from tests.factories import brief_payload

    body = assert_problem(client.post("/v1/briefs", json=brief_payload(promo_codes=value), headers=auth(key)), 422)
    assert "promo_codes" in body["errors"]


# --- claims ---------------------------------------------------------------------------------------


def test_a_claim_on_a_promo_brief_carries_a_readable_code_shown_in_my_claims(client, standin):
    brief, _ = promo_brief(client, standin)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    code = held["promo_code"]
    assert CODE_RE.match(code), code
    assert code.startswith("NORTHW-")
    assert not set(code.split("-")[1]) & set("0O1ILU")
    assert held["brief"]["promo_codes"] is True
    mine = client.get("/v1/me/claims", headers=auth(token)).get_json()["data"]
    assert [(c["claim_id"], c["promo_code"]) for c in mine] == [(held["claim_id"], code)]
    listing = client.get("/v1/tasks", headers=auth(token)).get_json()["data"]
    assert listing[0]["brief"]["promo_codes"] is True


def test_a_brief_without_promo_codes_gives_its_claims_none(client, standin, db_session):
    brief, _ = promo_brief(client, standin, promo=False)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    assert held["promo_code"] is None and held["brief"]["promo_codes"] is False
    assert client.get("/v1/me/claims", headers=auth(token)).get_json()["data"][0]["promo_code"] is None
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT promo_code FROM claims WHERE id = :c"),
                              {"c": held["claim_id"]}).scalar_one() is None


def test_the_prefix_comes_from_the_brands_letters():
    from marketplace.tasks.promo_codes import new_promo_code, prefix_for

    assert prefix_for("Northwind Coffee") == "NORTHW"
    assert prefix_for("Café 42") == "CAFE"
    assert prefix_for("1234") == "PROMO"
    assert prefix_for("日本") == "PROMO"
    assert CODE_RE.match(new_promo_code("Ab"))


@pytest.mark.slow
def test_racing_claims_get_distinct_codes_even_when_the_draws_collide(app, client, standin, db_session,
                                                                      monkeypatch):
    """Threads race claims on a promo brief while the random part is forced to repeat: two draws in
    three are a code another claim already holds or is inserting right now. The unique index refuses
    the duplicates and each claim draws again in its own transaction; every claim gets a code, no
    two the same."""
    from marketplace.tasks import promo_codes

    brief, _ = promo_brief(client, standin, quantity=40)
    group_id = brief["task_groups"][0]["id"]
    tokens = [sign_up_worker(client)[1] for _ in range(20)]
    draws = Counter()
    lock = threading.Lock()

    def colliding() -> str:
        with lock:
            draws["n"] += 1
            n = draws["n"]
        # Every third draw is fresh; the others repeat the one code "AAAAAAAA", which the first claim takes.
        return f"FRESH{n:03d}" if n % 3 == 0 else "AAAAAAAA"

    monkeypatch.setattr(promo_codes, "random_part", colliding)
    barrier = threading.Barrier(len(tokens))
    results: list = [None] * len(tokens)

    def post(i: int, token: str) -> None:
        with app.test_client() as c:
            barrier.wait(timeout=60)
            response = c.post(f"/v1/task-groups/{group_id}/claim", headers=auth(token))
            results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=post, args=(i, t)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    from marketplace.extensions import db

    with app.app_context():
        db.engine.dispose()
    statuses = Counter(status for status, _ in results)
    # Five draws per claim: a claim whose draws all collide is refused (503, try again), never given a duplicate.
    assert set(statuses) <= {201, 503}, results
    assert statuses[201] >= 15, statuses
    codes = [body["promo_code"] for status, body in results if status == 201]
    assert len(set(codes)) == len(codes)
    assert sum(code.endswith("-AAAAAAAA") for code in codes) == 1
    db_session.rollback()
    stored = db_session.execute(sa.text("SELECT promo_code FROM claims WHERE group_id = :g"),
                                {"g": group_id}).scalars().all()
    assert sorted(stored) == sorted(codes)
    assert draws["n"] > len(codes)  # the collisions happened and were retried


def test_the_database_refuses_a_second_claim_with_the_same_code(app, client, standin, db_session):
    brief, _ = promo_brief(client, standin)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    other = claim(client, token, brief["task_groups"][0]["id"])
    db_session.rollback()
    with pytest.raises(sa.exc.IntegrityError):
        db_session.execute(sa.text("UPDATE claims SET promo_code = :p WHERE id = :c"),
                           {"p": held["promo_code"], "c": other["claim_id"]})
        db_session.flush()
    db_session.rollback()
