"""Promo codes: a brief that asks for them gives each claim a unique, readable code; brands report
sales by it (no click needed); reports and the content bank show it."""

from __future__ import annotations

import csv
import io
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


def test_a_typed_code_normalises_to_the_one_code_it_can_mean():
    from marketplace.tasks.promo_codes import normalise

    for typed in ("northw-k7m3qx9p", "NORTHWK7M3QX9P", " n0rthw k7m3qx9p ", "Northw_K7M3QX9P"):
        assert normalise(typed) == "NORTHW-K7M3QX9P", typed
    assert normalise("A-23456789") == "A-23456789"
    assert normalise("K7M3QX9P") == "K7M3QX9P"  # no prefix: matches no code
    assert normalise("---") == ""


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
    """Twenty threads race claims on a promo brief while every claim's first two draws are the same
    code: one claim takes it, and the other nineteen, whether the holder has committed or is still
    inserting, are refused it by the unique index twice and take their third draw, each in its own
    transaction. Every claim gets a code, no two the same."""
    from marketplace.tasks import promo_codes

    brief, _ = promo_brief(client, standin, quantity=40)
    group_id = brief["task_groups"][0]["id"]
    tokens = [sign_up_worker(client)[1] for _ in range(20)]
    mine = threading.local()
    draws = Counter()
    lock = threading.Lock()

    def colliding() -> str:  # each request runs in its own thread: a count per claim
        mine.n = getattr(mine, "n", 0) + 1
        with lock:
            draws["all"] += 1
            fresh = draws["all"]
        return "AAAAAAAA" if mine.n <= 2 else f"FRESH{fresh:03d}"

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
    assert Counter(status for status, _ in results) == {201: 20}, results
    codes = [body["promo_code"] for _, body in results]
    assert len(set(codes)) == 20
    assert sum(code == "NORTHW-AAAAAAAA" for code in codes) == 1
    assert draws["all"] == 1 + 19 * 3  # the winner drew once; everyone else collided twice, then drew fresh
    db_session.rollback()
    stored = db_session.execute(sa.text("SELECT promo_code FROM claims WHERE group_id = :g"),
                                {"g": group_id}).scalars().all()
    assert sorted(stored) == sorted(codes)


def test_a_claim_whose_every_draw_is_taken_is_503_and_holds_nothing(client, standin, db_session, monkeypatch):
    from marketplace.tasks import promo_codes

    brief, _ = promo_brief(client, standin, quantity=3)
    group_id = brief["task_groups"][0]["id"]
    monkeypatch.setattr(promo_codes, "random_part", lambda: "AAAAAAAA")
    _, first = sign_up_worker(client)
    assert claim(client, first, group_id)["promo_code"] == "NORTHW-AAAAAAAA"
    _, second = sign_up_worker(client)
    response = client.post(f"/v1/task-groups/{group_id}/claim", headers=auth(second))
    problem = assert_problem(response, 503)
    assert "promo code" in problem["detail"] and response.headers["Retry-After"] == "1"
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM claims WHERE group_id = :g"),
                              {"g": group_id}).scalar_one() == 1
    assert db_session.execute(sa.text("SELECT count(*) FROM tasks WHERE group_id = :g AND status = 'open'"),
                              {"g": group_id}).scalar_one() == 2
    monkeypatch.undo()  # the next draw is random again: the same worker's claim goes through
    assert CODE_RE.match(claim(client, second, group_id)["promo_code"])


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


# --- conversions by promo code ----------------------------------------------------------------------


def sale(promo_code: str, external_id: str, value_cents: int = 2500, **over) -> dict:
    return {"promo_code": promo_code, "external_id": external_id, "value_cents": value_cents,
            "occurred_at": "2026-05-01T10:00:00Z", **over}


@pytest.fixture
def promo(client, standin):
    """A live promo brief with two workers' claims (two codes), and a second brand with a promo brief of its own."""
    brief, key = promo_brief(client, standin)
    group_id = brief["task_groups"][0]["id"]
    (worker, token), (rival, rival_token) = sign_up_worker(client), sign_up_worker(client)
    held, rival_held = claim(client, token, group_id), claim(client, rival_token, group_id)
    other_brief, other_key = promo_brief(client, standin, brand="Contoso")
    other_held = claim(client, token, other_brief["task_groups"][0]["id"])
    return {"brief": brief, "key": key, "worker": worker, "claim": held, "rival": rival, "rival_claim": rival_held,
            "other_key": other_key, "other_claim": other_held}


def count_conversions(db_session) -> int:
    db_session.rollback()
    return db_session.execute(sa.text("SELECT count(*) FROM conversions")).scalar_one()


def test_a_sale_by_promo_code_is_credited_to_that_claims_worker_with_no_click(client, promo, db_session):
    body = sale(promo["claim"]["promo_code"], "order-1")
    response = client.post("/v1/conversions", json=body, headers=auth(promo["key"]))
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()
    assert (stored["task_id"], stored["worker_id"], stored["click_id"], stored["attributed_by"]) == (
        promo["claim"]["task"]["id"], promo["worker"]["id"], None, "promo_code")
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT claim_id FROM conversions WHERE id = :i"),
                              {"i": stored["id"]}).scalar_one() == promo["claim"]["claim_id"]
    # A replay is the first one back; the rival's code is credited to the rival.
    again = client.post("/v1/conversions", json=body, headers=auth(promo["key"]))
    assert again.status_code == 200 and again.get_json() == stored
    theirs = client.post("/v1/conversions", json=sale(promo["rival_claim"]["promo_code"], "order-2"),
                         headers=auth(promo["key"])).get_json()
    assert theirs["worker_id"] == promo["rival"]["id"]


@pytest.mark.parametrize("typed", [
    str.lower, lambda c: f"  {c.lower()} ", str.title, lambda c: c.replace("-", ""),
    lambda c: c.replace("-", " ").lower(), lambda c: c.replace("O", "0", 1),
], ids=["lower", "spaces", "title", "no-hyphen", "space-for-hyphen", "zero-for-O"])
def test_a_promo_code_matches_whatever_its_case_and_hyphen(client, promo, typed):
    response = client.post("/v1/conversions", json=sale(typed(promo["claim"]["promo_code"]), "order-case"),
                           headers=auth(promo["key"]))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["worker_id"] == promo["worker"]["id"]


def test_an_unknown_promo_code_or_another_brands_is_404_and_attributes_nothing(client, promo, db_session):
    for code in ("NORTHW-ZZZZZZZZ", promo["other_claim"]["promo_code"]):
        body = assert_problem(client.post("/v1/conversions", json=sale(code, f"x-{code}"), headers=auth(promo["key"])),
                              404)
        assert "promo code" in body["detail"]
    # The other brand's code is theirs to report; ours is not.
    assert client.post("/v1/conversions", json=sale(promo["claim"]["promo_code"], "y"),
                       headers=auth(promo["other_key"])).status_code == 404
    bulk = client.post("/v1/conversions", json={"conversions": [
        sale(promo["claim"]["promo_code"], "b-1"), sale(promo["other_claim"]["promo_code"], "b-2")]},
        headers=auth(promo["key"])).get_json()
    assert [(r["outcome"], r["status"]) for r in bulk["results"]] == [("created", 201), ("not_found", 404)]
    assert count_conversions(db_session) == 1


@pytest.mark.parametrize("change", [
    {"promo_code": ""}, {"promo_code": "   "}, {"promo_code": 12345}, {"promo_code": "X" * 65},
    {"code": "abc"}, {"click_id": "clk_x"},
])
def test_bad_promo_code_input_is_422_and_stores_nothing(client, promo, db_session, change):
    body = {**sale(promo["claim"]["promo_code"], "bad-1"), **change}
    problem = assert_problem(client.post("/v1/conversions", json=body, headers=auth(promo["key"])), 422)
    assert problem["errors"]
    assert count_conversions(db_session) == 0


# --- reports and the content bank -------------------------------------------------------------------


def test_the_report_and_the_content_bank_show_each_workers_promo_code(app, client, promo):
    key = auth(promo["key"])
    mine, theirs = promo["claim"], promo["rival_claim"]
    approve(app, [mine, theirs])
    client.post("/v1/conversions", json={"conversions": [
        sale(mine["promo_code"], "p-1", 1000), sale(mine["promo_code"].lower(), "p-2", 500),
        {"code": mine["tracked_code"], "external_id": "c-1", "value_cents": 300,
         "occurred_at": "2026-05-01T10:00:00Z"}]}, headers=key)
    report = client.get(f"/v1/briefs/{promo['brief']['id']}/report", headers=key).get_json()
    workers = {w["worker_id"]: w for w in report["workers"]}
    assert workers[promo["worker"]["id"]]["promo_codes"] == [{
        "promo_code": mine["promo_code"], "group_id": mine["task"]["group_id"], "task_id": mine["task"]["id"],
        "conversions": 2, "revenue_cents": 1500}]
    assert workers[promo["worker"]["id"]]["conversions"] == 3  # the tracked link's sale counts too
    assert workers[promo["rival"]["id"]]["promo_codes"][0]["promo_code"] == theirs["promo_code"]
    assert workers[promo["rival"]["id"]]["promo_codes"][0]["conversions"] == 0
    (group,) = report["groups"]
    assert (group["conversions"], group["promo_code_conversions"], group["promo_code_revenue_cents"]) == (3, 2, 1500)

    assets = client.get(f"/v1/briefs/{promo['brief']['id']}/assets", headers=key).get_json()["data"]
    assert {a["worker_id"]: a["promo_code"] for a in assets} == {
        promo["worker"]["id"]: mine["promo_code"], promo["rival"]["id"]: theirs["promo_code"]}
    exported = client.get(f"/v1/briefs/{promo['brief']['id']}/assets?format=csv", headers=key)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True), newline="")))
    header = exported.get_data(as_text=True).splitlines()[0].split(",")
    assert header.index("promo_code") == header.index("tracked_link") + 1
    assert {r["worker_id"]: r["promo_code"] for r in rows} == {
        promo["worker"]["id"]: mine["promo_code"], promo["rival"]["id"]: theirs["promo_code"]}


def test_without_promo_codes_the_report_and_csv_show_none(app, client, standin):
    brief, key = promo_brief(client, standin, promo=False)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    approve(app, [held])
    report = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(key)).get_json()
    assert [w["promo_codes"] for w in report["workers"]] == [[]]
    assert report["groups"][0]["promo_code_conversions"] == 0
    exported = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(key)).get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(exported, newline=""))
    assert row["promo_code"] == ""
    # A promo code is no way into a brief without them.
    assert client.post("/v1/conversions", json=sale("ACMESH-23456789", "n-1"), headers=auth(key)).status_code == 404


def test_the_embedded_sqlite_default_makes_promo_codes_and_attributes_by_them(tmp_path):
    """`make run` keeps its data in SQLite: the claim's INSERT … ON CONFLICT (promo_code) DO NOTHING
    RETURNING and the lookup work there too."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from marketplace import create_app\n"
        "from flask_migrate import upgrade\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/m.sqlite3'}})\n"
        "from marketplace.extensions import db\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    from marketplace.demo import seed\n"
        "    demo = seed()\n"
        "    db.session.execute(db.text('UPDATE briefs SET promo_codes = 1'))\n"
        "    db.session.commit()\n"
        "    group = db.session.execute(db.text(\"select id from task_groups where name = 'B'\")).scalar()\n"
        "c = app.test_client()\n"
        "token, key = demo.exports['WORKER_TOKEN'], demo.exports['BRAND_KEY']\n"
        "held = c.post(f'/v1/task-groups/{group}/claim', headers={'Authorization': 'Bearer ' + token}).get_json()\n"
        "sale = {'promo_code': held['promo_code'].lower(), 'external_id': 'o-1', 'value_cents': 900,\n"
        "        'occurred_at': '2026-05-01T10:00:00Z'}\n"
        "r = c.post('/v1/conversions', json=sale, headers={'Authorization': 'Bearer ' + key})\n"
        "print(held['promo_code'], r.status_code, r.get_json()['task_id'] == held['task']['id'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_KEY": "x"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    code, status, same_task = out.stdout.split("\n")[-2].split()
    assert CODE_RE.match(code) and code.startswith("DEMORU-"), code
    assert (status, same_task) == ("201", "True")


def test_a_promo_claim_takes_one_statement_more_than_any_claim(client, standin, driver_statements):
    """The claim is a hot path: its statements go in one batch, the second not waiting for the
    first's answer; on a promo brief the code's prefix (the brand's name) is in that answer, so the
    claim's statement, which held back for want of a code, goes once more with one. Drawing and
    inserting the code is the INSERT the claim makes anyway: no statement of its own."""
    plain, _ = promo_brief(client, standin, promo=False)
    promo, _ = promo_brief(client, standin)
    _, token = sign_up_worker(client)

    def statements(group_id: str) -> list[str]:
        with driver_statements as seen:
            claim(client, token, group_id)
        return list(seen)

    claim(client, token, plain["task_groups"][0]["id"])  # warm: the first request loads what it caches
    with_code, without = statements(promo["task_groups"][0]["id"]), statements(plain["task_groups"][0]["id"])
    assert len(with_code) == len(without) + 1 > 1
    assert sum("ON CONFLICT (promo_code) DO NOTHING" in s for s in without) == 1
    assert sum("ON CONFLICT (promo_code) DO NOTHING" in s for s in with_code) == 2
