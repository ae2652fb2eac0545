"""A task group's eligibility: set with the brief, checked on input, shown on the read; the
worker's listing leaves out what they may not take, in one query; a claim by anyone kept out is
403 naming the rule, decided inside the claim's transaction."""

from __future__ import annotations

import sqlalchemy as sa

from tests import factories as f
from tests.factories.workforce import patch_profile


def group(quantity: int = 5, **over) -> dict:
    return {"kind": "caption", "quantity": quantity, "unit_price_cents": 60, "instructions": "Write a caption",
            "proof": {"text": {"min_length": 20, "max_length": 300}}, **over}


def counts(db_session) -> tuple[int, int, int]:
    return tuple(db_session.execute(sa.text(
        "SELECT (SELECT count(*) FROM briefs), (SELECT count(*) FROM group_eligibility), "
        "(SELECT count(*) FROM group_eligibility_values)")).one())


def test_eligibility_is_stored_and_shown_on_the_brief(client, db_session):
    _, key = f.sign_up_brand(client)
    invited, _ = f.sign_up_worker(client)
    out, _ = f.sign_up_worker(client)
    rules = {"countries": ["gb", "FR", "GB"], "languages": ["FR"], "min_approval_rate": 0.9, "min_approved": 10,
             "workers": [invited["id"]], "exclude_workers": [out["id"]]}
    created = f.create_brief(client, key, task_groups=[group(eligibility=rules), group()])
    expected = {"countries": ["GB", "FR"], "languages": ["fr"], "min_approval_rate": 0.9, "min_approved": 10,
                "workers": [invited["id"]], "exclude_workers": [out["id"]]}
    first, second = created["task_groups"]
    assert (first["eligibility"], second["eligibility"]) == (expected, None)
    # The one-statement read and the list (ORM) path show the same.
    read = client.get(f"/v1/briefs/{created['id']}", headers=f.auth(key)).get_json()
    assert [g["eligibility"] for g in read["task_groups"]] == [expected, None]
    listed = client.get("/v1/briefs", headers=f.auth(key)).get_json()["data"][0]
    assert [g["eligibility"] for g in listed["task_groups"]] == [expected, None]
    row = db_session.execute(sa.text(
        "SELECT min_approval_rate, min_approved, has_countries, has_languages, invite_only FROM group_eligibility "
        "WHERE group_id = :g"), {"g": first["id"]}).one()
    assert (float(row[0]), row[1], row[2], row[3], row[4]) == (0.9, 10, True, True, True)
    values = db_session.execute(sa.text(
        "SELECT rule, value FROM group_eligibility_values WHERE group_id = :g ORDER BY rule, value"),
        {"g": first["id"]}).all()
    assert [tuple(v) for v in values] == [("countries", "FR"), ("countries", "GB"), ("exclude_workers", out["id"]),
                                          ("languages", "fr"), ("workers", invited["id"])]


def test_bad_eligibility_is_422_naming_the_field_and_writes_nothing(client, db_session):
    _, key = f.sign_up_brand(client)
    before = counts(db_session)
    for rules, field in [({"countries": ["XX"]}, "countries"), ({"countries": ["GBR"]}, "countries"),
                         ({"languages": ["zz"]}, "languages"), ({"languages": "fr"}, "languages"),
                         ({"min_approval_rate": 1.5}, "min_approval_rate"),
                         ({"min_approval_rate": -0.1}, "min_approval_rate"),
                         ({"min_approval_rate": "high"}, "min_approval_rate"),
                         ({"min_approved": -1}, "min_approved"), ({"min_approved": 2.5}, "min_approved"),
                         ({"workers": ["wrk_doesnotexist"]}, "workers"), ({"workers": ["someone"]}, "workers"),
                         ({"exclude_workers": ["wrk_nobody"]}, "exclude_workers"),
                         ({"colour": "blue"}, "colour")]:
        response = client.post("/v1/briefs", json=f.brief_payload(task_groups=[group(), group(eligibility=rules)]),
                               headers=f.auth(key))
        assert response.status_code == 422, (rules, response.get_json())
        assert response.content_type == "application/problem+json"
        errors = response.get_json()["errors"]
        assert any(name.startswith("task_groups[1].eligibility.") and field in name for name in errors), errors
    assert counts(db_session) == before


def live(client, standin, groups: list[dict], key: str | None = None) -> tuple[dict, str]:
    if key is None:
        _, key = f.sign_up_brand(client)
    return f.live_brief(client, key, standin, task_groups=groups), key


def listed(client, token: str, brief_id: str) -> set[str]:
    response = client.get(f"/v1/tasks?brief={brief_id}", headers=f.auth(token))
    assert response.status_code == 200, response.get_json()
    return {g["name"] for g in response.get_json()["data"]}


def claim(client, token: str, group_id: str):
    return client.post(f"/v1/task-groups/{group_id}/claim", headers=f.auth(token))


def refused_by(response) -> str:
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("not-eligible"), body
    (rule,) = body["errors"]
    return rule


def test_the_listing_and_the_claim_keep_out_whom_each_rule_names(client, standin, db_session):
    me, token = f.sign_up_worker(client)  # GB, no languages, no track record
    other, other_token = f.sign_up_worker(client)
    rules = {"open": None, "countries": {"countries": ["FR", "DE"]}, "gb": {"countries": ["GB"]},
             "languages": {"languages": ["fr"]}, "min_approved": {"min_approved": 1},
             "min_approval_rate": {"min_approval_rate": 0.5}, "invite_only": {"workers": [other["id"]]},
             "invited": {"workers": [me["id"]]}, "excluded": {"exclude_workers": [me["id"]]},
             "zero": {"min_approved": 0}}
    brief, _ = live(client, standin, [group(name=name, eligibility=r) for name, r in rules.items()])
    ids = {g["name"]: g["id"] for g in brief["task_groups"]}
    allowed = {"open", "gb", "invited", "zero"}
    assert listed(client, token, brief["id"]) == allowed
    expected_rule = {"countries": "country", "languages": "language", "min_approved": "min_approved",
                     "min_approval_rate": "min_approval_rate", "invite_only": "invite_only", "excluded": "excluded"}
    for name, rule in expected_rule.items():
        assert refused_by(claim(client, token, ids[name])) == rule, name
    assert db_session.execute(sa.text("SELECT count(*) FROM claims WHERE worker_id = :w"),
                              {"w": me["id"]}).scalar() == 0
    for name in sorted(allowed):
        assert claim(client, token, ids[name]).status_code == 201, name
    # The other worker: invited to invite_only, not to invited; not excluded.
    assert listed(client, other_token, brief["id"]) == {"open", "gb", "invite_only", "excluded", "zero"}
    # A profile change moves the worker in and out at once.
    assert patch_profile(client, token, country="FR", languages=["fr"]).status_code == 200
    assert listed(client, token, brief["id"]) == {"open", "countries", "languages", "zero"} | {"invited"}
    assert refused_by(claim(client, token, ids["gb"])) == "country"


def test_a_track_record_lets_a_worker_past_the_reputation_rules(client, standin, db_session):
    from tests.factories.workforce import track_record

    me, token = f.sign_up_worker(client)
    brief, _ = live(client, standin, [group(name="rate", eligibility={"min_approval_rate": 0.8}),
                                      group(name="count", eligibility={"min_approved": 4})])
    ids = {g["name"]: g["id"] for g in brief["task_groups"]}
    track_record(client, db_session, standin, me["id"], approved=4, rejected=0)
    # Four decided: no rate yet (below five), but four approved.
    assert listed(client, token, brief["id"]) == {"count"}
    assert refused_by(claim(client, token, ids["rate"])) == "min_approval_rate"
    track_record(client, db_session, standin, me["id"], approved=0, rejected=1)  # 4 of 5 = 0.8
    assert listed(client, token, brief["id"]) == {"count", "rate"}
    assert claim(client, token, ids["rate"]).status_code == 201
    track_record(client, db_session, standin, me["id"], approved=0, rejected=1)  # 4 of 6 < 0.8
    assert listed(client, token, brief["id"]) == {"count"}
    assert refused_by(claim(client, token, ids["rate"])) == "min_approval_rate"


def test_the_listing_is_one_statement_whose_rules_go_through_indexes(app, client, standin, monkeypatch):
    """The eligibility is subqueries of the listing's one statement; with sequential scans off
    (the test's tables are too small for the planner to prefer an index otherwise), each probe of
    the rules, the values and the blocks is an index scan, never a scan of a whole table."""
    import psycopg

    from marketplace.extensions import db

    me, token = f.sign_up_worker(client)
    live(client, standin, [group(name="a", eligibility={"countries": ["GB"], "languages": ["en"],
                                                        "min_approval_rate": 0.5, "min_approved": 1,
                                                        "exclude_workers": [me["id"]]}), group(name="b")])
    sent = []
    execute = psycopg.Cursor.execute

    def record(cursor, query, params=None, **kwargs):  # the listing runs on the direct pool, past SQLAlchemy
        sent.append((query, params))
        return execute(cursor, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    response = client.get("/v1/tasks", headers=f.auth(token))
    monkeypatch.undo()
    assert response.status_code == 200
    assert [g["name"] for g in response.get_json()["data"]] == ["b"]
    listing = [(sql, params) for sql, params in sent if "group_eligibility" in sql]
    assert len(listing) == 1, [sql[:200] for sql, _ in listing]
    sql, params = listing[0]
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
    for table in ("group_eligibility", "group_eligibility_values", "brand_blocks", "worker_languages"):
        scans = [line for line in plan.splitlines() if f" on {table} " in line + " "]
        # An index scan, or a bitmap heap scan fed by a bitmap index scan: never a sequential scan.
        assert scans and all("Index" in line or "Bitmap Heap Scan" in line for line in scans), (table, plan)


def test_a_rejection_committed_while_the_claim_waits_on_the_worker_keeps_them_out(app, client, standin,
                                                                                    db_session):
    """The claim locks the worker's row, then reads the rate: a rejection that commits while the
    claim is in flight (here: waiting for that lock, held by the transaction that rejects; a
    decision's notification to the worker takes a key lock on the same row) is seen, and the claim
    is refused. Checking before the lock would let it through."""
    import threading

    from marketplace.extensions import db
    from tests.factories import reviews
    from tests.factories.workforce import track_record

    me, token = f.sign_up_worker(client)
    brand_key = track_record(client, db_session, standin, me["id"], approved=9, rejected=0)  # rate 1.0
    _, other_brief = reviews.review_brief(client, standin, brand_key, quantity=2)
    (pending,) = reviews.bulk_submissions(db_session, other_brief["task_groups"][0]["id"], [me["id"]], 1)
    brief, _ = live(client, standin, [group(eligibility={"min_approval_rate": 0.95})])
    group_id = brief["task_groups"][0]["id"]
    result = {}

    def claim_in_thread():
        with app.test_client() as c:
            result["response"] = claim(c, token, group_id)

    with app.app_context(), db.engine.connect() as rejecting:
        rejecting.execute(sa.text("SELECT id FROM workers WHERE id = :id FOR UPDATE"), {"id": me["id"]})
        thread = threading.Thread(target=claim_in_thread)
        thread.start()

        def claim_waits() -> bool:
            db_session.rollback()  # pg_stat_activity is a snapshot per transaction
            return db_session.execute(sa.text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted "
                "AND a.datname = current_database() AND a.query LIKE '%FROM workers%FOR UPDATE%'")).scalar() >= 1

        f.wait_for(claim_waits)
        db_session.rollback()
        # 9 of 10 = 0.9 < 0.95, committed while the claim waits.
        rejecting.execute(sa.text("UPDATE submissions SET status = 'rejected', decided_at = now() WHERE id = :id"),
                          {"id": pending})
        rejecting.commit()
    thread.join(timeout=30)
    assert refused_by(result["response"]) == "min_approval_rate"
    assert db_session.execute(sa.text("SELECT count(*) FROM claims WHERE group_id = :g"),
                              {"g": group_id}).scalar() == 0


def test_the_listing_text_is_fixed_and_within_what_psycopg_keeps_converted(app, client, standin, monkeypatch):
    """The listing's statement has no IN list SQLAlchemy expands on every execution (its status
    lists bind as arrays), and what is sent (text and parameters) stays within the bounds psycopg
    caches the placeholder conversion for (marketplace.db.direct raises the length bound), so the
    text is converted once and prepared by the server after a few runs, not split on each request."""
    import psycopg
    from psycopg import _queries

    from marketplace.db import direct
    from marketplace.extensions import db
    from marketplace.tasks import service

    live(client, standin, [group(name="a", eligibility={"countries": ["GB"], "min_approval_rate": 0.5})])
    _, token = f.sign_up_worker(client)
    sent = []
    execute = psycopg.Cursor.execute

    def record(cursor, query, params=None, **kwargs):  # the listing runs on the direct pool, past SQLAlchemy
        if "group_eligibility" in query:
            sent.append((query, params))
        return execute(cursor, query, params, **kwargs)

    with app.app_context():
        compiled = str(service._listing(False, False, False, as_caller=True).compile(dialect=db.engine.dialect))
    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    assert client.get("/v1/tasks", headers=f.auth(token)).status_code == 200
    monkeypatch.undo()
    assert "POSTCOMPILE" not in compiled
    [(text, parameters)] = sent
    assert len(text.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH == direct._QUERY_CACHE_LIMIT
    assert len(parameters) <= _queries.MAX_CACHED_STATEMENT_PARAMS
