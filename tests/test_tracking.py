"""Tracked links (GET /t/{code}) and conversions (POST /v1/conversions)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from tests.factories import auth, live_brief, sign_up_brand
from tests.factories.tracking import click, conversion, workers

CAPTION = {"kind": "caption", "quantity": 10, "unit_price_cents": 100, "max_per_worker": 5,
           "proof": {"text": {"min_length": 5, "max_length": 300}}}


@pytest.fixture
def linked(client, standin):
    """A live brief of one brand, a claimed task with its tracked code, and a second brand."""
    brand, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[CAPTION],
                       landing_url="https://shop.example.com/spring?ref=mail&utm_medium=email&empty=#top")
    (worker, token), = workers(client, 1)
    held = client.post(f"/v1/task-groups/{brief['task_groups'][0]['id']}/claim", headers=auth(token)).get_json()
    _, other_key = sign_up_brand(client, "Other")
    return {"brand_key": brand_key, "brief": brief, "worker": worker, "claim": held, "code": held["tracked_code"],
            "other_key": other_key}


def count(db_session, table: str) -> int:
    db_session.rollback()
    return db_session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_a_click_is_recorded_once_with_hashed_visitor_data_and_redirects_with_utm(client, linked, db_session):
    response = client.get(f"/t/{linked['code']}", headers={"User-Agent": "Mozilla/5.0 (Phone)"},
                          environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    location = urlsplit(response.headers["Location"])
    assert (location.netloc, location.path, location.fragment) == ("shop.example.com", "/spring", "top")
    query = parse_qsl(location.query, keep_blank_values=True)
    params = dict(query)
    assert len(query) == len(params)  # ours replaced theirs, no duplicated names
    assert params["ref"] == "mail" and params["empty"] == ""  # the landing URL's own parameters are kept
    assert params["utm_source"] == "marketplace" and params["utm_medium"] == "caption"  # ours win over "email"
    assert params["utm_campaign"] == linked["brief"]["id"] and params["utm_content"] == linked["claim"]["task"]["id"]

    row = db_session.execute(sa.text("SELECT * FROM clicks")).mappings().one()
    assert row["id"] == params["mkt_click"]
    assert (row["claim_id"], row["task_id"], row["brief_id"], row["worker_id"], row["group_id"]) == (
        linked["claim"]["claim_id"], linked["claim"]["task"]["id"], linked["brief"]["id"], linked["worker"]["id"],
        linked["brief"]["task_groups"][0]["id"])
    key = b"test-secret-key"
    assert row["ip_hash"] == hmac.new(key, b"198.51.100.23", hashlib.sha256).hexdigest()
    assert row["user_agent_hash"] == hmac.new(key, b"Mozilla/5.0 (Phone)", hashlib.sha256).hexdigest()
    stored = " ".join(str(v) for v in row.values())
    assert "198.51.100.23" not in stored and "Mozilla" not in stored  # no raw personal data


def test_unknown_code_is_a_404_page_and_never_a_redirect(client, linked, db_session):
    for code in ("nope", "x" * 33, linked["code"] + "x", "%27%20OR%201=1"):
        response = client.get(f"/t/{code}")
        assert response.status_code == 404 and "Location" not in response.headers
        assert response.content_type == "application/problem+json"
    assert client.head("/t/nope").status_code == 404
    assert count(db_session, "clicks") == 0


def test_head_redirects_without_counting_a_click(client, linked, db_session):
    response = client.head(f"/t/{linked['code']}")
    assert response.status_code == 302 and "utm_source=marketplace" in response.headers["Location"]
    assert "mkt_click" not in response.headers["Location"]
    assert count(db_session, "clicks") == 0
    click(client, linked["code"], 3)
    assert count(db_session, "clicks") == 3


def test_the_tracked_link_needs_no_auth_and_survives_a_burst_from_many_threads(app, linked, db_session):
    """Four visitors, each clicking 20 times at once from its own thread: every request redirects, and the
    unique index lets exactly one click per visitor count, however the requests interleave."""
    statuses, click_ids = [], {}

    def visit(n: int):
        with app.test_client() as c:
            for _ in range(20):
                response = c.get(f"/t/{linked['code']}", headers={"User-Agent": f"phone {n}"},
                                 environ_base={"REMOTE_ADDR": f"192.0.2.{n + 1}"})
                statuses.append(response.status_code)
                given = dict(parse_qsl(urlsplit(response.headers["Location"]).query)).get("mkt_click")
                if given:
                    click_ids.setdefault(n, set()).add(given)

    threads = [threading.Thread(target=visit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [302] * 80
    assert count(db_session, "clicks") == 4
    stored = set(db_session.scalars(sa.text("SELECT id FROM clicks")))
    assert set().union(*click_ids.values()) <= stored  # a repeat hands back the visit's click, never a lost one


def _landing_click(response) -> str | None:
    assert response.status_code == 302
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query)).get("mkt_click")


def test_a_thousand_clicks_by_one_visitor_count_once_in_the_window(client, linked, db_session):
    def visit(agent: str = "Mozilla/5.0 (Phone)"):
        return client.get(f"/t/{linked['code']}", headers={"User-Agent": agent},
                          environ_base={"REMOTE_ADDR": "198.51.100.23"})

    given = {_landing_click(visit()) for _ in range(1000)}
    assert count(db_session, "clicks") == 1
    (first,) = given  # every repeat lands with the first click's id, so a conversion still attributes
    assert first == db_session.execute(sa.text("SELECT id FROM clicks")).scalar_one()

    other_agent = _landing_click(visit("Mozilla/5.0 (Tablet)"))  # another visitor behind the same address
    assert other_agent not in (None, first) and count(db_session, "clicks") == 2

    # The window passes (the stored clicks are moved back one window): the visitor counts again.
    db_session.execute(sa.text("UPDATE clicks SET visit_window = visit_window - 1, "
                               "clicked_at = clicked_at - interval '31 minutes'"))
    db_session.commit()
    again = _landing_click(visit())
    assert again not in (None, first) and count(db_session, "clicks") == 3

    report = client.get(f"/v1/briefs/{linked['brief']['id']}/report", headers=auth(linked["brand_key"])).get_json()
    assert report["totals"]["clicks"] == 3
    assert report["click_counting"] == {"unique_per": "visitor", "window_seconds": 1800,
                                        "address_cap_per_minute": 60}


def test_one_address_counts_at_most_its_cap_a_minute_and_every_request_still_redirects(
        app, client, linked, db_session, monkeypatch):
    monkeypatch.setitem(app.config, "CLICK_CAP_PER_ADDRESS_PER_MINUTE", 5)
    given = [_landing_click(client.get(f"/t/{linked['code']}", headers={"User-Agent": f"agent {n}"},
                                       environ_base={"REMOTE_ADDR": "203.0.113.50"})) for n in range(40)]
    assert count(db_session, "clicks") == 5
    assert all(given[:5]) and given[5:] == [None] * 35  # past the cap: redirected, not counted
    # Another address is not held back by it.
    assert _landing_click(client.get(f"/t/{linked['code']}", environ_base={"REMOTE_ADDR": "203.0.113.51"}))
    # A minute later the address may count again.
    db_session.execute(sa.text("UPDATE clicks SET clicked_at = clicked_at - interval '61 seconds'"))
    db_session.commit()
    assert _landing_click(client.get(f"/t/{linked['code']}", headers={"User-Agent": "agent 99"},
                                     environ_base={"REMOTE_ADDR": "203.0.113.50"}))
    assert count(db_session, "clicks") == 7
    report = client.get(f"/v1/briefs/{linked['brief']['id']}/report", headers=auth(linked["brand_key"])).get_json()
    assert report["click_counting"]["address_cap_per_minute"] == 5


def test_click_counting_settings_below_one_are_refused_at_start_up():
    from marketplace.config import check

    for name in ("CLICK_VISIT_WINDOW_SECONDS", "CLICK_CAP_PER_ADDRESS_PER_MINUTE"):
        with pytest.raises(ValueError, match=name):
            check({"DUPLICATE_HAMMING_THRESHOLD": 6, name: 0})


def test_a_conversion_by_code_is_attributed_and_a_replay_returns_the_first(client, linked, db_session):
    body = conversion(linked["code"], "order-1", 4200, "2026-05-01T10:00:00+02:00")
    first = client.post("/v1/conversions", json=body, headers=auth(linked["brand_key"]))
    assert first.status_code == 201, first.get_json()
    stored = first.get_json()
    assert stored["id"].startswith("conv_") and stored["value_cents"] == 4200 and stored["currency"] == "usd"
    assert stored["occurred_at"] == "2026-05-01T08:00:00Z"
    assert (stored["task_id"], stored["worker_id"], stored["group_id"]) == (
        linked["claim"]["task"]["id"], linked["worker"]["id"], linked["brief"]["task_groups"][0]["id"])
    again = client.post("/v1/conversions", json=body, headers=auth(linked["brand_key"]))
    assert again.status_code == 200 and again.get_json() == stored
    changed = client.post("/v1/conversions", json={**body, "value_cents": 4300}, headers=auth(linked["brand_key"]))
    assert changed.status_code == 409 and "external_id" in changed.get_json()["errors"]
    assert count(db_session, "conversions") == 1


def test_a_conversion_by_click_id(client, linked, db_session):
    location = client.get(f"/t/{linked['code']}").headers["Location"]
    click_id = dict(parse_qsl(urlsplit(location).query))["mkt_click"]
    body = {"click_id": click_id, "external_id": "o-9", "value_cents": 0, "occurred_at": "2026-05-01T10:00:00Z"}
    response = client.post("/v1/conversions", json=body, headers=auth(linked["brand_key"]))
    assert response.status_code == 201 and response.get_json()["click_id"] == click_id
    assert response.get_json()["task_id"] == linked["claim"]["task"]["id"]


def test_another_brands_code_or_click_is_404(client, linked, db_session):
    body = conversion(linked["code"], "theirs-1", 100)
    response = client.post("/v1/conversions", json=body, headers=auth(linked["other_key"]))
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    bulk = client.post("/v1/conversions", json={"conversions": [body]}, headers=auth(linked["other_key"]))
    assert bulk.status_code == 200 and bulk.get_json()["results"][0]["outcome"] == "not_found"
    assert bulk.get_json()["results"][0]["status"] == 404
    by_click = {"click_id": "clk_nope", "external_id": "x", "value_cents": 1, "occurred_at": "2026-05-01T10:00:00Z"}
    assert client.post("/v1/conversions", json=by_click, headers=auth(linked["brand_key"])).status_code == 404
    assert count(db_session, "conversions") == 0


@pytest.mark.parametrize("change", [
    {"value_cents": 12.5}, {"value_cents": 100.0}, {"value_cents": -1}, {"value_cents": "100"},
    {"value_cents": True}, {"external_id": None}, {"external_id": ""}, {"occurred_at": "yesterday"},
    {"occurred_at": "2026-05-01T10:00:00"}, {"occurred_at": "2999-01-01T00:00:00Z"}, {"currency": "USD"},
    {"click_id": "clk_x"}, {"code": None},
])
def test_bad_conversion_input_is_422_and_changes_nothing(client, linked, db_session, change):
    body = {**conversion(linked["code"], "bad-1", 100), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/conversions", json=body, headers=auth(linked["brand_key"]))
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json" and response.get_json()["errors"]
    # One bad item spoils the bulk form too: nothing of it is stored.
    good = conversion(linked["code"], "good-1", 100)
    bulk = client.post("/v1/conversions", json={"conversions": [good, body]}, headers=auth(linked["brand_key"]))
    assert bulk.status_code == 422 and any(k.startswith("conversions[1]") for k in bulk.get_json()["errors"])
    assert count(db_session, "conversions") == 0


def test_missing_external_id_bulk_over_1000_and_non_objects_are_422(client, linked, db_session):
    key = auth(linked["brand_key"])
    body = conversion(linked["code"], "x", 100)
    del body["external_id"]
    assert client.post("/v1/conversions", json=body, headers=key).status_code == 422
    too_many = [conversion(linked["code"], f"o-{i}", 1) for i in range(1001)]
    response = client.post("/v1/conversions", json={"conversions": too_many}, headers=key)
    assert response.status_code == 422 and "conversions" in response.get_json()["errors"]
    for payload in ([body], {"conversions": []}, {"conversions": "x"}, "text", 5):
        assert client.post("/v1/conversions", json=payload, headers=key).status_code == 422
    assert count(db_session, "conversions") == 0


def test_conversions_need_a_brand_key(client, linked):
    body = conversion(linked["code"], "o-1", 100)
    assert client.post("/v1/conversions", json=body).status_code == 401
    (_, token), = workers(client, 1)
    assert client.post("/v1/conversions", json=body, headers=auth(token)).status_code == 403


def test_a_conversion_in_another_currency_is_422(client, linked, db_session):
    response = client.post("/v1/conversions", json=conversion(linked["code"], "eur-1", 100, currency="eur"),
                           headers=auth(linked["brand_key"]))
    assert response.status_code == 422 and "currency" in response.get_json()["errors"]
    assert count(db_session, "conversions") == 0


def test_bulk_of_1000_is_stored_in_one_call_with_per_item_results(client, linked, db_session):
    key = auth(linked["brand_key"])
    assert client.post("/v1/conversions", json=conversion(linked["code"], "o-0", 7), headers=key).status_code == 201
    items = [conversion(linked["code"], f"o-{i}", 7) for i in range(997)]
    items += [
        conversion(linked["code"], "o-1", 8),            # repeats o-1 with another value: conflict
        conversion("unknown-code", "o-unknown", 7),      # not found
        conversion(linked["code"], "o-0", 9),             # o-0 was stored before with 7: conflict
    ]
    response = client.post("/v1/conversions", json={"conversions": items}, headers=key)
    assert response.status_code == 200
    body = response.get_json()
    outcomes = [r["outcome"] for r in body["results"]]
    assert outcomes[0] == "duplicate" and outcomes[1:997] == ["created"] * 996
    assert outcomes[997:] == ["conflict", "not_found", "conflict"]
    assert (body["created"], body["duplicates"], body["failed"]) == (996, 1, 3)
    assert [r["index"] for r in body["results"]] == list(range(1000))
    assert body["results"][0]["conversion"]["value_cents"] == 7 and body["results"][0]["status"] == 200
    assert count(db_session, "conversions") == 997
    replay = client.post("/v1/conversions", json={"conversions": items[:997]}, headers=key).get_json()
    assert replay["duplicates"] == 997 and count(db_session, "conversions") == 997


def test_bulk_repeats_within_one_request_and_a_foreign_currency_item(client, linked, db_session):
    key = auth(linked["brand_key"])
    items = [
        conversion(linked["code"], "r-1", 7),
        conversion(linked["code"], "r-1", 7),                  # the same conversion again: a duplicate
        conversion(linked["code"], "r-2", 5, currency="eur"),  # the brief is in usd: invalid
        conversion(linked["code"], "r-2", 5),                  # r-2 as it should be: stored
        conversion(linked["code"], "r-3", 5, currency="eur"),  # invalid, and r-3 is not stored
    ]
    body = client.post("/v1/conversions", json={"conversions": items}, headers=key).get_json()
    results = body["results"]
    assert [r["outcome"] for r in results] == ["created", "duplicate", "invalid", "created", "invalid"]
    assert [r["status"] for r in results] == [201, 200, 422, 201, 422]
    assert results[1]["conversion"]["id"] == results[0]["conversion"]["id"]
    assert "usd" in results[2]["detail"]
    assert (body["created"], body["duplicates"], body["failed"]) == (2, 1, 2)
    db_session.rollback()
    stored = db_session.execute(sa.text("SELECT external_id, currency FROM conversions ORDER BY external_id")).all()
    assert stored == [("r-1", "usd"), ("r-2", "usd")]


def test_the_same_external_id_from_many_threads_is_stored_once(app, linked, db_session):
    body = conversion(linked["code"], "racy-1", 500)
    statuses, ids = [], set()
    barrier = threading.Barrier(8)

    def post():
        with app.test_client() as c:
            barrier.wait()
            response = c.post("/v1/conversions", json=body, headers=auth(linked["brand_key"]))
            statuses.append(response.status_code)
            ids.add(response.get_json()["id"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 7 + [201] and len(ids) == 1
    assert count(db_session, "conversions") == 1


def test_openapi_documents_the_tracked_link_and_the_ratio_formats(client):
    spec = client.get("/openapi.json").get_json()
    assert "302" in spec["paths"]["/t/{code}"]["get"]["responses"]
    body = spec["paths"]["/v1/conversions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(body["oneOf"]) == 2
    cpa = spec["components"]["schemas"]["Performance"]["properties"]["cpa_cents"]
    assert cpa["type"] == "string" and "rounded half up" in cpa["description"]


def test_a_click_survives_a_dropped_database_connection(client, linked, db_session):
    """The click pool's sessions vanish as in a database restart: the visitor is still redirected,
    and the click is stored once (the write is retried once on a fresh pool)."""
    click(client, linked["code"])  # the click pool now holds a connection
    dropped = db_session.execute(sa.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'marketplace-direct-fast'")).scalar_one()
    db_session.commit()
    assert dropped >= 1
    response = client.get(f"/t/{linked['code']}", environ_base={"REMOTE_ADDR": "192.0.2.200"})  # a new visitor
    assert response.status_code == 302
    assert count(db_session, "clicks") == 2


def test_the_embedded_sqlite_default_counts_a_visit_once_and_caps_an_address(tmp_path):
    """`make run` keeps its data in SQLite, which takes the resolve-look-insert path: same rules."""
    import subprocess
    import sys

    script = (
        "from marketplace import create_app\n"
        "from flask_migrate import upgrade\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/m.sqlite3', "
        "'CLICK_CAP_PER_ADDRESS_PER_MINUTE': 3})\n"
        "from marketplace.extensions import db\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    from marketplace.demo import seed\n"
        "    seed()\n"
        "    code = db.session.execute(db.text('select tracked_code from claims limit 1')).scalar()\n"
        "    before = db.session.execute(db.text('select count(*) from clicks')).scalar()\n"
        "c = app.test_client()\n"
        "def go(ip, ua):\n"
        "    r = c.get('/t/' + code, headers={'User-Agent': ua}, environ_base={'REMOTE_ADDR': ip})\n"
        "    assert r.status_code == 302, r.status_code\n"
        "    return 'mkt_click=' in r.headers['Location']\n"
        "same = [go('192.0.2.9', 'one') for _ in range(10)]\n"
        "capped = [go('192.0.2.9', f'agent {n}') for n in range(5)]\n"
        "with app.app_context():\n"
        "    print(db.session.execute(db.text('select count(*) from clicks')).scalar() - before, all(same), capped)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_KEY": "x"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # One visit (its ten requests all carry its click), then two more agents up to the cap of 3, then none.
    assert out.stdout.split("\n")[-2] == "3 True [True, True, False, False, False]"
