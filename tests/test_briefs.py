"""Briefs: validation, the budget rule, ownership, lifecycle, publishing tasks."""

from __future__ import annotations

import sqlalchemy as sa

from tests.factories import (
    auth,
    brief_payload,
    create_brief,
    fund_brief,
    live_brief,
    make_admin,
    sign_up_brand,
    sign_up_worker,
)


def table_counts(db_session) -> dict:
    return {t: db_session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("briefs", "task_groups", "tasks", "ledger_entries", "payments")}


def test_create_brief_returns_groups_counts_and_money(client):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    assert brief["id"].startswith("brief_") and brief["status"] == "draft"
    assert [g["kind"] for g in brief["task_groups"]] == ["caption", "clip"]
    assert brief["task_groups"][0]["id"].startswith("grp_")
    assert brief["task_groups"][0]["fee_per_task_cents"] == 6
    assert brief["money"] == {
        "currency": "usd", "budget_cents": 50000, "cost_cents": 300 * 60 + 100 * 100,
        "fee_cents": 300 * 6 + 100 * 10, "bonus_reserve_cents": 0, "committed_cents": 30800, "funded_cents": 0,
        "spent_cents": 0, "refunded_cents": 0, "remaining_cents": 0,
    }
    assert brief["task_groups"][0]["counts"] == dict.fromkeys(
        ["open", "claimed", "submitted", "approved", "paid", "cancelled", "rejected"], 0)


def test_the_created_document_is_what_reading_the_brief_shows(client):
    """Creation renders its answer from the rows it wrote, without reading them back: it must
    be what the database then holds, every field, including optional ones and fractional times."""
    _, key = sign_up_brand(client)
    payload = brief_payload(
        starts_at="2026-05-01T09:30:00.123456+02:00", ends_at="2026-06-01T00:00:00Z",
        audience="runners", hook="Lighter", offer="20% off", prohibitions=["no competitor names"],
        reference_url="https://example.com/ref", target_cpa_cents=500, auto_approve_after_hours=12,
        disclosure_required=False,
    )
    payload["task_groups"][0].update(name="A", max_per_worker=3, instructions="Open with the hook")
    created = create_brief(client, key, **payload)
    read = client.get(f"/v1/briefs/{created['id']}", headers=auth(key)).get_json()
    assert created == read
    assert created["starts_at"] == "2026-05-01T07:30:00.123456Z" and created["ends_at"] == "2026-06-01T00:00:00Z"
    assert read["task_groups"][0]["proof"] == created["task_groups"][0]["proof"] != {}
    listed = client.get("/v1/briefs", headers=auth(key)).get_json()["data"]
    assert listed == [read]


def test_budget_one_cent_short_is_422_and_saves_nothing(client, db_session):
    _, key = sign_up_brand(client)
    groups = [{"kind": "caption", "quantity": 10, "unit_price_cents": 100}]  # 1000 + 100 fee
    before = table_counts(db_session)
    short = client.post("/v1/briefs", json=brief_payload(budget_cents=1099, task_groups=groups), headers=auth(key))
    assert short.status_code == 422
    assert "1 short" in short.get_json()["errors"]["budget_cents"][0]
    assert table_counts(db_session) == before
    exact = client.post("/v1/briefs", json=brief_payload(budget_cents=1100, task_groups=groups), headers=auth(key))
    assert exact.status_code == 201


def test_bad_fields_get_field_level_errors_and_change_nothing(client, db_session):
    _, key = sign_up_brand(client)
    before = table_counts(db_session)
    cases = {
        "budget_cents": [-100, 10.5, "500", True, None],
        "currency": ["USD", "dollars", "zzz"],
        "landing_url": ["javascript:alert(1)", "not a url"],
        "starts_at": ["2026-12-01", "yesterday", "2026-12-01T00:00:00"],
        "task_groups": [[], "many", [{"kind": "poem", "quantity": 1, "unit_price_cents": 1}]],
        "objective": ["fame"],
        "auto_approve_after_hours": [0, 1.5],
        "disclosure_required": ["yes", 1, "false", None],
    }
    for field, values in cases.items():
        for value in values:
            response = client.post("/v1/briefs", json=brief_payload(**{field: value}), headers=auth(key))
            assert response.status_code == 422, (field, value, response.get_json())
            assert response.content_type == "application/problem+json"
            errors = response.get_json()["errors"]
            assert any(name == field or name.startswith(field) for name in errors), (field, value, errors)
    assert table_counts(db_session) == before


def test_group_quantities_and_prices_must_be_positive_integers(client):
    _, key = sign_up_brand(client)
    for group in ({"quantity": 0}, {"quantity": -3}, {"quantity": 2.5}, {"unit_price_cents": 0},
                  {"unit_price_cents": 0.6}, {"unit_price_cents": "60"}):
        payload = brief_payload()
        payload["task_groups"][0].update(group)
        response = client.post("/v1/briefs", json=payload, headers=auth(key))
        assert response.status_code == 422, group
        (name,) = [n for n in response.get_json()["errors"] if n.startswith("task_groups[0]")]
        assert name.split(".")[-1] in group


def test_window_must_be_ordered(client):
    _, key = sign_up_brand(client)
    response = client.post("/v1/briefs", json=brief_payload(
        starts_at="2026-12-08T00:00:00Z", ends_at="2026-12-08T00:00:00Z"), headers=auth(key))
    assert response.status_code == 422 and "ends_at" in response.get_json()["errors"]


def test_fields_a_client_must_not_set_are_refused(client, db_session):
    _, key = sign_up_brand(client)
    other, _ = sign_up_brand(client, "Other")
    before = table_counts(db_session)
    for field, value in [("status", "live"), ("brand_id", other["id"]), ("money", {"funded_cents": 10**9}),
                         ("funded_cents", 50000), ("fee_bps", 0), ("id", "brief_mine")]:
        response = client.post("/v1/briefs", json=brief_payload(**{field: value}), headers=auth(key))
        assert response.status_code == 422, field
        assert field in response.get_json()["errors"]
    assert table_counts(db_session) == before


def test_another_brands_brief_is_not_found(client):
    _, key_a = sign_up_brand(client, "A")
    _, key_b = sign_up_brand(client, "B")
    brief = create_brief(client, key_a)
    for method, path in [("get", ""), ("post", "/fund"), ("post", "/publish"), ("post", "/pause"),
                         ("post", "/cancel")]:
        response = getattr(client, method)(f"/v1/briefs/{brief['id']}{path}", headers=auth(key_b))
        assert response.status_code == 404, path
    assert client.get("/v1/briefs", headers=auth(key_b)).get_json()["data"] == []
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(key_a)).status_code == 200


def test_admin_sees_every_brief(client, runner):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    admin = make_admin(runner)
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(admin)).status_code == 200
    assert client.post("/v1/briefs", json=brief_payload(), headers=auth(admin)).status_code == 403


def test_list_is_newest_first_with_a_cursor(client):
    _, key = sign_up_brand(client)
    made = [create_brief(client, key, title=f"Brief {i}")["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        url = "/v1/briefs?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth(key)).get_json()
        assert len(page["data"]) <= 3
        seen += [b["id"] for b in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert client.get("/v1/briefs?limit=501", headers=auth(key)).status_code == 422
    assert client.get("/v1/briefs?limit=0", headers=auth(key)).status_code == 422
    assert client.get("/v1/briefs?cursor=garbage!!", headers=auth(key)).status_code == 422


def test_illegal_transitions_are_409(client, standin):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    for action in ("publish", "pause", "resume"):
        response = client.post(f"/v1/briefs/{brief['id']}/{action}", headers=auth(key))
        assert response.status_code == 409, action
    fund_brief(client, key, brief["id"], standin)
    assert client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).status_code == 409
    assert client.post(f"/v1/briefs/{brief['id']}/resume", headers=auth(key)).status_code == 409
    assert client.post(f"/v1/briefs/{brief['id']}/publish", headers=auth(key)).status_code == 200
    assert client.post(f"/v1/briefs/{brief['id']}/publish", headers=auth(key)).status_code == 409
    assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=auth(key)).get_json()["status"] == "paused"
    assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=auth(key)).status_code == 409
    assert client.post(f"/v1/briefs/{brief['id']}/resume", headers=auth(key)).get_json()["status"] == "live"


def test_publishing_expands_every_group_into_one_task_per_action(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin)
    assert brief["status"] == "live"
    rows = db_session.execute(sa.text(
        "SELECT group_id, count(*), min(seq), max(seq), count(DISTINCT id), bool_and(status = 'open') "
        "FROM tasks WHERE brief_id = :b GROUP BY group_id"), {"b": brief["id"]}).all()
    by_group = {r[0]: r[1:] for r in rows}
    for group in brief["task_groups"]:
        q = group["quantity"]
        assert by_group[group["id"]] == (q, 1, q, q, True)
        assert group["counts"]["open"] == q
    ids = db_session.execute(sa.text("SELECT id FROM tasks LIMIT 5")).scalars().all()
    assert all(i.startswith("task_") and len(i) == 37 for i in ids)


def test_publishing_ten_thousand_tasks_is_one_insert(client, standin, db_session, app, sql_statements):
    _, key = sign_up_brand(client)
    groups = [{"kind": k, "quantity": 2500, "unit_price_cents": 10}
              for k in ("caption", "review", "translation", "survey")]
    brief = create_brief(client, key, budget_cents=2_000_000, task_groups=groups)
    fund_brief(client, key, brief["id"], standin)

    with app.app_context(), sql_statements as sent:  # its own context: not db_session's session
        response = client.post(f"/v1/briefs/{brief['id']}/publish", headers=auth(key))
    statements = [s for s in sent if "tasks" in s and s.lstrip().upper().startswith("INSERT")]
    assert response.status_code == 200
    assert len(statements) == 1 and "generate_series" in statements[0]
    assert db_session.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one() == 10_000


def test_missing_fields_are_each_named(client, db_session):
    _, key = sign_up_brand(client)
    response = client.post("/v1/briefs", json={}, headers=auth(key))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    for field in ("title", "objective", "landing_url", "budget_cents", "starts_at", "ends_at", "task_groups"):
        assert errors[field] == ["Missing data for required field."], field
    group_errors = client.post("/v1/briefs", json=brief_payload(task_groups=[{}]), headers=auth(key)).get_json()["errors"]
    assert {"task_groups[0].kind", "task_groups[0].quantity", "task_groups[0].unit_price_cents"} <= set(group_errors)
    assert table_counts(db_session)["briefs"] == 0


def test_the_one_statement_read_equals_the_brief_in_the_list(client, standin, runner, db_session):
    """GET /v1/briefs/{id} builds its document from one statement; the list goes through the ORM
    and the schema. Both must show the same brief in every state: counts of every kind, money
    approved, rejected and refunded, a draft with no ledger lines, a cancelled brief."""
    from tests.factories import reviews as fr

    key, live = fr.review_brief(client, standin, quantity=12)
    tokens = [token for _, token in fr.workers(client, 3)]
    group_id = live["task_groups"][0]["id"]
    claimed = fr.claims(client, tokens, group_id, 9)
    submitted = fr.submit_claims(db_session, claimed[:7])
    db_session.commit()
    admin = make_admin(runner)
    decided = {"approve": submitted[:3], "reject": submitted[3:5]}
    for decision, ids in decided.items():
        body = {"submission_ids": ids, "decision": decision}
        if decision == "reject":
            body["reason_code"] = "off_brief"
        assert client.post("/v1/review/decisions", json=body, headers=auth(admin)).status_code == 200
    draft = create_brief(client, key, title="Still a draft")
    refunded = create_brief(client, key, title="Funded, then cancelled")
    fund_brief(client, key, refunded["id"], standin)
    assert client.post(f"/v1/briefs/{refunded['id']}/cancel", headers=auth(key)).status_code == 200

    listed = {b["id"]: b for b in client.get("/v1/briefs", headers=auth(key)).get_json()["data"]}
    assert len(listed) == 3
    for brief_id, expected in listed.items():
        for secret in (key, admin):
            response = client.get(f"/v1/briefs/{brief_id}", headers=auth(secret))
            assert response.status_code == 200 and response.content_type == "application/json"
            assert response.get_json() == expected, brief_id

    counts = listed[live["id"]]["task_groups"][0]["counts"]
    # 9 claimed: 2 still held, 7 submitted; 3 approved, 2 rejected (their tasks reopen), 2 waiting.
    assert counts == {"open": 3 + 2, "claimed": 2, "submitted": 2, "approved": 3, "rejected": 2, "paid": 0,
                      "cancelled": 0}
    # Task states add up to the group's quantity; rejections count submissions, apart.
    group = listed[live["id"]]["task_groups"][0]
    assert sum(n for state, n in counts.items() if state != "rejected") == group["quantity"]
    money = listed[live["id"]]["money"]
    assert money["spent_cents"] == 3 * 110 and money["remaining_cents"] == money["funded_cents"] - 3 * 110
    assert listed[draft["id"]]["money"]["funded_cents"] == 0 and listed[draft["id"]]["money"]["remaining_cents"] == 0
    assert listed[refunded["id"]]["money"]["refunded_cents"] == listed[refunded["id"]]["money"]["funded_cents"] > 0


def test_the_one_statement_read_answers_401_403_and_404_like_every_route(client, db_session):
    brand, key = sign_up_brand(client)
    brief = create_brief(client, key)
    path = f"/v1/briefs/{brief['id']}"
    _, token = sign_up_worker(client)

    assert client.get(path).status_code == 401
    assert client.get(path, headers=auth("mk_not-a-key")).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {key}"}).status_code == 401
    assert client.get(path, headers=auth(token)).status_code == 403
    assert client.get("/v1/briefs/brief_nope", headers=auth(key)).status_code == 404
    long_id = client.get("/v1/briefs/" + "x" * 3000, headers=auth(key))
    assert long_id.status_code == 404 and long_id.content_type == "application/problem+json"
    too_long = client.get("/v1/briefs/" + "x" * 5000, headers=auth(key))  # past the URL limit
    assert too_long.status_code == 414 and too_long.content_type == "application/problem+json"

    db_session.execute(sa.text("UPDATE credentials SET revoked_at = now() WHERE principal_id = :id"),
                       {"id": brand["id"]})
    db_session.commit()
    revoked = client.get(path, headers=auth(key))
    assert revoked.status_code == 401 and revoked.get_json()["detail"] == "The credentials are not valid."


def test_creating_authenticates_before_judging_the_body(client, runner, db_session):
    """POST /v1/briefs authenticates inside its one statement, after the body is parsed; a refused
    body must still answer 401/403 first for a bad key or the wrong role, and write nothing."""
    brand, key = sign_up_brand(client)
    _, token = sign_up_worker(client)
    admin = make_admin(runner)
    invalid = brief_payload(budget_cents="lots")
    over_budget = brief_payload(budget_cents=100)
    before = table_counts(db_session)

    for body in (invalid, over_budget, brief_payload()):
        assert client.post("/v1/briefs", json=body, headers=auth("mk_not-a-key")).status_code == 401
        assert client.post("/v1/briefs", json=body).status_code == 401
        assert client.post("/v1/briefs", json=body, headers=auth(token)).status_code == 403
        # An admin key reaches briefs (as on every brief route) but creates none, whatever the body.
        refused = client.post("/v1/briefs", json=body, headers=auth(admin))
        assert refused.status_code == 403 and "brand's API key" in refused.get_json()["detail"]
    assert client.post("/v1/briefs", data="{not json", content_type="application/json",
                       headers=auth("mk_not-a-key")).status_code == 401
    assert client.post("/v1/briefs", json=invalid, headers=auth(key)).status_code == 422
    assert client.post("/v1/briefs", json=over_budget, headers=auth(key)).status_code == 422

    db_session.execute(sa.text("UPDATE credentials SET revoked_at = now() WHERE principal_id = :id"),
                       {"id": brand["id"]})
    db_session.commit()
    assert client.post("/v1/briefs", json=brief_payload(), headers=auth(key)).status_code == 401
    assert table_counts(db_session) == before


def test_an_expired_token_is_401_on_the_one_statement_brief_routes(client, db_session):
    """Expiry is judged inside the statements too: an expired worker token hears 'expired' (401),
    not 'wrong role' (403), on the read and on the create, and nothing is written."""
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    _, token = sign_up_worker(client)
    db_session.execute(sa.text("UPDATE credentials SET expires_at = now() - interval '1 second' WHERE kind = 'token'"))
    db_session.commit()
    before = table_counts(db_session)
    for response in (client.get(f"/v1/briefs/{brief['id']}", headers=auth(token)),
                     client.post("/v1/briefs", json=brief_payload(), headers=auth(token)),
                     client.post("/v1/briefs", json=brief_payload(budget_cents="x"), headers=auth(token))):
        assert response.status_code == 401 and "expired" in response.get_json()["detail"]
    assert table_counts(db_session) == before
