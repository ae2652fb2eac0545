"""A brand's API keys: scoped, named, listed without their secrets, revoked at once, rolled with overlap."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from tests.factories import (
    auth,
    brief_payload,
    brief_status,
    create_brief,
    sign_up_brand,
    sign_up_worker,
)

ALL_SCOPES = ["briefs:read", "briefs:write", "review:write", "conversions:write", "webhooks:write", "keys:write"]


def make_key(client, key: str, **body) -> dict:
    body.setdefault("name", "CI")
    body.setdefault("scopes", ["briefs:read"])
    response = client.post("/v1/api-keys", json=body, headers=auth(key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def credential_rows(db_session) -> list:
    return db_session.execute(sa.text("SELECT * FROM credentials ORDER BY created_at, id")).all()


def test_the_sign_up_key_has_every_scope_and_a_visible_prefix(client):
    _, key = sign_up_brand(client)
    listed = client.get("/v1/api-keys", headers=auth(key))
    assert listed.status_code == 200
    (only,) = listed.get_json()["data"]
    assert only["scopes"] == ALL_SCOPES and only["name"] == "Sign-up key"
    assert key.startswith(only["prefix"] + "_") and only["prefix"].startswith("mk_") and len(only["prefix"]) == 11
    assert only["expires_at"] is None


def test_a_new_key_shows_its_secret_once_and_only_its_hash_is_stored(client, db_session):
    _, key = sign_up_brand(client)
    made = make_key(client, key, name="Dashboard", scopes=["briefs:read", "review:write"], expires_in_hours=48)
    assert made["id"].startswith("key_") and made["secret"].startswith(made["prefix"] + "_")
    assert made["scopes"] == ["briefs:read", "review:write"] and made["name"] == "Dashboard"
    assert made["expires_at"] is not None and made["last_used_at"] is None
    stored = db_session.execute(sa.text("SELECT secret_hash, scopes FROM credentials WHERE id = :id"),
                                {"id": made["id"]}).one()
    assert stored.secret_hash == hashlib.sha256(made["secret"].encode()).hexdigest()
    assert made["secret"] not in str(credential_rows(db_session))

    listed = client.get("/v1/api-keys", headers=auth(key)).get_json()["data"]
    assert [k["name"] for k in listed] == ["Dashboard", "Sign-up key"]
    for shown in listed:
        assert set(shown) == {"id", "name", "scopes", "prefix", "created_at", "last_used_at", "expires_at"}
    assert made["secret"] not in str(listed) and key not in str(listed)
    me = client.get("/v1/me", headers=auth(made["secret"]))
    assert me.status_code == 200 and me.get_json()["role"] == "brand"


def test_bad_scopes_names_and_hours_are_422_and_make_nothing(client, db_session):
    _, key = sign_up_brand(client)
    before = len(credential_rows(db_session))
    for body in ({"name": "x", "scopes": ["briefs:delete"]},
                 {"name": "x", "scopes": []},
                 {"name": "", "scopes": ["briefs:read"]},
                 {"name": "x", "scopes": "briefs:read"},
                 {"name": "x", "scopes": ["briefs:read"], "expires_in_hours": 0},
                 {"name": "x", "scopes": ["briefs:read"], "expires_in_hours": 10**9},
                 {"name": "x", "scopes": ["briefs:read"], "expires_in_hours": "soon"}):
        response = client.post("/v1/api-keys", json=body, headers=auth(key))
        assert response.status_code == 422, body
        assert response.content_type == "application/problem+json"
    roll = client.post(f"/v1/api-keys/{make_key(client, key)['id']}/roll", json={"expires_in_hours": -1},
                       headers=auth(key))
    assert roll.status_code == 422
    assert client.post(f"/v1/api-keys/{make_key(client, key)['id']}/roll", json={},
                       headers=auth(key)).status_code == 422
    assert len(credential_rows(db_session)) == before + 2  # the two keys made to roll, nothing else


def test_managing_keys_needs_keys_write(client, db_session):
    _, key = sign_up_brand(client)
    reader = make_key(client, key, scopes=["briefs:read", "briefs:write"])
    before = len(credential_rows(db_session))
    for method, path, body in (("post", "/v1/api-keys", {"name": "x", "scopes": ["keys:write"]}),
                               ("get", "/v1/api-keys", None),
                               ("delete", f"/v1/api-keys/{reader['id']}", None),
                               ("post", f"/v1/api-keys/{reader['id']}/roll", {"expires_in_hours": 1})):
        response = getattr(client, method)(path, json=body, headers=auth(reader["secret"]))
        assert response.status_code == 403, path
        assert "keys:write" in response.get_json()["detail"]
    assert len(credential_rows(db_session)) == before
    assert client.get("/v1/me", headers=auth(reader["secret"])).status_code == 200  # not revoked by itself
    _, token = sign_up_worker(client)
    assert client.get("/v1/api-keys", headers=auth(token)).status_code == 403
    assert client.get("/v1/api-keys").status_code == 401


def test_a_revoked_key_is_refused_on_the_next_request(client):
    _, key = sign_up_brand(client)
    made = make_key(client, key)
    assert client.get("/v1/me", headers=auth(made["secret"])).status_code == 200
    assert client.delete(f"/v1/api-keys/{made['id']}", headers=auth(key)).status_code == 204
    assert client.get("/v1/me", headers=auth(made["secret"])).status_code == 401
    assert made["id"] not in str(client.get("/v1/api-keys", headers=auth(key)).get_json())
    assert client.delete(f"/v1/api-keys/{made['id']}", headers=auth(key)).status_code == 404


def test_another_brands_key_is_not_found(client, db_session):
    _, mine = sign_up_brand(client)
    _, theirs = sign_up_brand(client, name="Rival")
    their_key = make_key(client, theirs)
    assert client.delete(f"/v1/api-keys/{their_key['id']}", headers=auth(mine)).status_code == 404
    assert client.post(f"/v1/api-keys/{their_key['id']}/roll", json={"expires_in_hours": 0},
                       headers=auth(mine)).status_code == 404
    assert client.get("/v1/me", headers=auth(their_key["secret"])).status_code == 200
    assert their_key["id"] not in str(client.get("/v1/api-keys", headers=auth(mine)).get_json())
    assert client.delete("/v1/api-keys/key_nope", headers=auth(mine)).status_code == 404


def test_a_rolled_key_keeps_working_until_its_overlap_ends(client, db_session):
    _, key = sign_up_brand(client)
    old = make_key(client, key, name="Warehouse", scopes=["conversions:write", "briefs:read"])
    rolled = client.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in_hours": 24}, headers=auth(key))
    assert rolled.status_code == 201
    new = rolled.get_json()
    assert new["id"] != old["id"] and new["secret"] != old["secret"]
    assert new["name"] == "Warehouse" and new["scopes"] == ["briefs:read", "conversions:write"]
    assert client.get("/v1/me", headers=auth(old["secret"])).status_code == 200  # still inside the overlap
    assert client.get("/v1/me", headers=auth(new["secret"])).status_code == 200
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=auth(key)).get_json()["data"]}
    assert listed[old["id"]]["expires_at"] is not None and listed[new["id"]]["expires_at"] is None

    # The overlap over (moved into the past as time would), the old key is refused, the new one is not.
    db_session.execute(sa.text("UPDATE credentials SET expires_at = now() - interval '1 second' WHERE id = :id"),
                       {"id": old["id"]})
    db_session.commit()
    assert client.get("/v1/me", headers=auth(old["secret"])).status_code == 401
    assert client.get("/v1/me", headers=auth(new["secret"])).status_code == 200


def test_rolling_with_no_overlap_stops_the_old_key_now(client):
    _, key = sign_up_brand(client)
    old = make_key(client, key)
    new = client.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in_hours": 0}, headers=auth(key)).get_json()
    assert client.get("/v1/me", headers=auth(old["secret"])).status_code == 401
    assert client.get("/v1/me", headers=auth(new["secret"])).status_code == 200


def test_a_key_can_roll_itself_and_a_roll_never_lengthens_the_old_keys_life(client, db_session):
    _, key = sign_up_brand(client)
    short = make_key(client, key, scopes=["keys:write"], expires_in_hours=1)
    client.post(f"/v1/api-keys/{short['id']}/roll", json={"expires_in_hours": 100}, headers=auth(short["secret"]))
    kept = db_session.execute(sa.text("SELECT expires_at - created_at FROM credentials WHERE id = :id"),
                              {"id": short["id"]}).scalar_one()
    assert kept.total_seconds() <= 3600 + 1


def test_a_key_rolls_once_and_its_successor_rolls_next(client):
    _, key = sign_up_brand(client)
    old = make_key(client, key, name="Warehouse")
    new = client.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in_hours": 24}, headers=auth(key)).get_json()
    again = client.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in_hours": 24}, headers=auth(key))
    assert again.status_code == 409 and again.content_type == "application/problem+json"
    assert new["id"] in again.get_json()["detail"]
    newer = client.post(f"/v1/api-keys/{new['id']}/roll", json={"expires_in_hours": 1}, headers=auth(key))
    assert newer.status_code == 201 and newer.get_json()["name"] == "Warehouse"
    names = [k["name"] for k in client.get("/v1/api-keys", headers=auth(key)).get_json()["data"]]
    assert sorted(names) == ["Sign-up key", "Warehouse", "Warehouse", "Warehouse"]  # old ones until they expire


def test_two_rolls_of_one_key_at_once_make_one_new_key(app, client, db_session):
    """Two requests rolling the same key at the same moment (threads, PostgreSQL row locks): one
    gets the new key, the other a 409 naming it; the old key names one successor, and exactly one
    new key exists, so no second live secret is left behind that its caller may never have seen."""
    import threading

    _, key = sign_up_brand(client)
    old = make_key(client, key, name="Warehouse", scopes=["briefs:read", "conversions:write"])
    before = len(credential_rows(db_session))
    db_session.rollback()
    barrier = threading.Barrier(2)
    answers: list = []

    def roll():
        own = app.test_client()
        barrier.wait()
        response = own.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in_hours": 24}, headers=auth(key))
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(code for code, _ in answers) == [201, 409], answers
    [made] = [body for code, body in answers if code == 201]
    [refused] = [body for code, body in answers if code == 409]
    assert made["id"] in refused["detail"]
    db_session.rollback()
    rows = credential_rows(db_session)
    assert len(rows) == before + 1
    [successor] = [r for r in rows if r.name == "Warehouse" and r.id != old["id"]]
    assert successor.id == made["id"] and successor.scopes == "briefs:read conversions:write"
    [rolled] = [r for r in rows if r.id == old["id"]]
    assert rolled.rolled_to == made["id"] and rolled.expires_at is not None and rolled.revoked_at is None
    assert client.get("/v1/me", headers=auth(made["secret"])).status_code == 200
    assert client.get("/v1/me", headers=auth(old["secret"])).status_code == 200  # within its 24 hours


def test_a_secret_is_looked_up_by_its_hash_through_the_unique_index(app, db_session):
    """Authentication reads one row by SHA-256(secret) through the unique index: no scan, and the
    timing of that lookup can at most tell an attacker about hashes, from which no secret follows."""
    plan = "\n".join(db_session.execute(sa.text(
        "EXPLAIN SELECT id FROM credentials WHERE secret_hash = :h"), {"h": "0" * 64}).scalars())
    db_session.rollback()
    assert "Index Scan using uq_credentials_secret_hash" in plan and "Seq Scan" not in plan, plan


# --- scopes on every brand route --------------------------------------------------------------------

def refused_for(response, scope: str) -> bool:
    body = response.get_json()
    return (response.status_code == 403 and response.content_type == "application/problem+json"
            and scope in body["detail"] and body["errors"] == {"scope": [f"Missing {scope}."]})


def count(db_session, table: str) -> int:
    db_session.rollback()  # a fresh snapshot: the app wrote on its own connections
    return db_session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_a_read_only_key_reads_briefs_and_is_refused_every_write_naming_the_scope(client, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    reader = make_key(client, key, scopes=["briefs:read"])["secret"]
    assert client.get("/v1/briefs", headers=auth(reader)).status_code == 200
    got = client.get(f"/v1/briefs/{brief['id']}", headers=auth(reader))  # the one-statement read
    assert got.status_code == 200 and got.get_json()["id"] == brief["id"]
    assert client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(reader)).status_code == 200
    assert client.get("/v1/review/submissions", headers=auth(reader)).status_code == 200

    briefs_before = count(db_session, "briefs")
    assert refused_for(client.post("/v1/briefs", json=brief_payload(), headers=auth(reader)), "briefs:write")
    # Refused for the key before anything about the body, as everywhere.
    assert refused_for(client.post("/v1/briefs", json={"name": ""}, headers=auth(reader)), "briefs:write")
    assert count(db_session, "briefs") == briefs_before
    for action in ("fund", "publish", "pause", "resume", "cancel"):
        assert refused_for(client.post(f"/v1/briefs/{brief['id']}/{action}", headers=auth(reader)), "briefs:write")
    assert brief_status(client, key, brief["id"]) == "draft"
    assert refused_for(client.post("/v1/review/decisions", json={"action": "approve", "submission_ids": []},
                                   headers=auth(reader)), "review:write")
    assert refused_for(client.post("/v1/conversions", json={"code": "x", "external_id": "o-1", "value_cents": 100},
                                   headers=auth(reader)), "conversions:write")
    # The integration routes need their own scopes: a reader lists events but registers no endpoint,
    # adds no group and blocks nobody.
    assert client.get("/v1/events", headers=auth(reader)).status_code == 200
    endpoints_before = count(db_session, "webhook_endpoints")
    assert refused_for(client.post("/v1/webhook-endpoints", json={"url": "https://hooks.example.com/in",
                                                                  "events": ["*"]}, headers=auth(reader)),
                       "webhooks:write")
    assert refused_for(client.get("/v1/webhook-endpoints", headers=auth(reader)), "webhooks:write")
    assert count(db_session, "webhook_endpoints") == endpoints_before
    assert refused_for(client.post(f"/v1/briefs/{brief['id']}/task-groups", json={}, headers=auth(reader)),
                       "briefs:write")
    assert refused_for(client.post("/v1/blocked-workers", json={"worker_id": "wrk_x", "reason": "spam"},
                                   headers=auth(reader)), "briefs:write")
    assert client.get("/v1/blocked-workers", headers=auth(reader)).status_code == 200


def test_a_write_only_key_creates_briefs_but_cannot_read_them(client, db_session):
    _, key = sign_up_brand(client)
    writer = make_key(client, key, scopes=["briefs:write"])["secret"]
    created = client.post("/v1/briefs", json=brief_payload(), headers=auth(writer))
    assert created.status_code == 201
    assert refused_for(client.get(f"/v1/briefs/{created.get_json()['id']}", headers=auth(writer)), "briefs:read")
    assert refused_for(client.get("/v1/briefs", headers=auth(writer)), "briefs:read")
    assert client.post(f"/v1/briefs/{created.get_json()['id']}/cancel", headers=auth(writer)).status_code == 200


def test_a_revoked_or_expired_key_is_refused_by_the_one_statement_paths(client, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    made = make_key(client, key, scopes=["briefs:read", "briefs:write"])
    client.delete(f"/v1/api-keys/{made['id']}", headers=auth(key))
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(made["secret"])).status_code == 401
    briefs_before = count(db_session, "briefs")
    assert client.post("/v1/briefs", json=brief_payload(), headers=auth(made["secret"])).status_code == 401
    assert count(db_session, "briefs") == briefs_before


def test_the_spec_states_each_brand_operations_scope(client):
    spec = client.get("/openapi.json").get_json()
    expected = {("/v1/briefs", "get"): "briefs:read", ("/v1/briefs", "post"): "briefs:write",
                ("/v1/briefs/{brief_id}", "get"): "briefs:read",
                ("/v1/briefs/{brief_id}/pause", "post"): "briefs:write",
                ("/v1/review/decisions", "post"): "review:write",
                ("/v1/conversions", "post"): "conversions:write",
                ("/v1/api-keys", "post"): "keys:write", ("/v1/api-keys/{key_id}", "delete"): "keys:write",
                ("/v1/events", "get"): "briefs:read", ("/v1/webhook-endpoints", "post"): "webhooks:write",
                ("/v1/briefs/{brief_id}/task-groups", "post"): "briefs:write",
                ("/v1/blocked-workers", "post"): "briefs:write"}
    for (path, method), scope in expected.items():
        operation = spec["paths"][path][method]
        assert operation["x-required-scope"] == scope, (path, method)
        assert f"`{scope}`" in operation["description"]
    assert "x-required-scope" not in spec["paths"]["/v1/tasks"]["get"]  # a worker's route


# --- last_used_at, written at most once a minute -----------------------------------------------------

def row_version(db_session, key_id: str):
    """The key's row version (xmin): it changes on every UPDATE of the row, even one to the same value."""
    db_session.rollback()
    return db_session.execute(sa.text("SELECT xmin::text AS version, last_used_at FROM credentials WHERE id = :id"),
                              {"id": key_id}).one()


def test_last_used_at_is_written_once_a_minute_however_many_requests(client, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    made = make_key(client, key, scopes=["briefs:read"])
    assert row_version(db_session, made["id"]).last_used_at is None

    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(made["secret"])).status_code == 200
    first = row_version(db_session, made["id"])
    assert first.last_used_at is not None
    for path in (f"/v1/briefs/{brief['id']}", "/v1/briefs", "/v1/me"):  # the one-statement read and the others
        assert client.get(path, headers=auth(made["secret"])).status_code == 200
    assert row_version(db_session, made["id"]) == first  # no write at all within the minute

    # A minute on (the stored time moved back, as the clock would move on), the next request writes it again.
    db_session.execute(sa.text("UPDATE credentials SET last_used_at = last_used_at - interval '61 seconds' "
                               "WHERE id = :id"), {"id": made["id"]})
    db_session.commit()
    moved_back = row_version(db_session, made["id"])
    assert client.get("/v1/me", headers=auth(made["secret"])).status_code == 200
    after = row_version(db_session, made["id"])
    assert after.version != moved_back.version and after.last_used_at > moved_back.last_used_at
    shown = {k["id"]: k for k in client.get("/v1/api-keys", headers=auth(key)).get_json()["data"]}
    assert shown[made["id"]]["last_used_at"] is not None


def test_a_refused_key_is_not_marked_used(client, db_session):
    _, key = sign_up_brand(client)
    made = make_key(client, key, scopes=["briefs:read"])
    client.delete(f"/v1/api-keys/{made['id']}", headers=auth(key))
    assert client.get("/v1/me", headers=auth(made["secret"])).status_code == 401
    assert row_version(db_session, made["id"]).last_used_at is None


def test_a_key_grants_no_scope_it_lacks_itself(client, db_session):
    _, key = sign_up_brand(client)
    manager = make_key(client, key, scopes=["keys:write", "briefs:read"])["secret"]
    before = len(credential_rows(db_session))
    assert refused_for(client.post("/v1/api-keys", json={"name": "x", "scopes": ["briefs:read", "briefs:write"]},
                                   headers=auth(manager)), "briefs:write")
    powerful = make_key(client, key, scopes=["briefs:write"])
    assert refused_for(client.post(f"/v1/api-keys/{powerful['id']}/roll", json={"expires_in_hours": 0},
                                   headers=auth(manager)), "briefs:write")
    assert len(credential_rows(db_session)) == before + 1  # only the key the sign-up key made
    assert client.get("/v1/me", headers=auth(powerful["secret"])).status_code == 200  # the refused roll changed nothing
    assert make_key(client, manager, scopes=["briefs:read"])["scopes"] == ["briefs:read"]


def test_the_task_listing_authenticates_in_its_own_statement(client, standin, db_session):
    """GET /v1/tasks reads the credential in the listing's statement: it answers 401 and 403 as
    every worker route does (a bad token before a bad query), and a token revoked or expired a
    moment ago lists nothing."""
    from tests.factories import live_brief

    _, key = sign_up_brand(client)
    live_brief(client, key, standin)
    _, token = sign_up_worker(client)
    listed = client.get("/v1/tasks", headers=auth(token))
    assert listed.status_code == 200 and listed.get_json()["data"], listed.get_json()
    assert client.get("/v1/tasks", headers=auth(key)).status_code == 403  # a brand's key
    assert client.get("/v1/tasks", headers=auth("wt_nope")).status_code == 401
    assert client.get("/v1/tasks?limit=0", headers=auth("wt_nope")).status_code == 401  # before the 422
    assert client.get("/v1/tasks?limit=0", headers=auth(key)).status_code == 403
    assert client.get("/v1/tasks?limit=0", headers=auth(token)).status_code == 422
    assert client.get("/v1/tasks").status_code == 401

    digest = hashlib.sha256(token.encode()).hexdigest()
    db_session.execute(sa.text("UPDATE credentials SET expires_at = now() - interval '1 second' "
                               "WHERE secret_hash = :h"), {"h": digest})
    db_session.commit()
    expired = client.get("/v1/tasks", headers=auth(token))
    assert expired.status_code == 401 and "expired" in expired.get_json()["detail"]
    db_session.execute(sa.text("UPDATE credentials SET expires_at = NULL, revoked_at = now() WHERE secret_hash = :h"),
                       {"h": digest})
    db_session.commit()
    assert client.get("/v1/tasks", headers=auth(token)).status_code == 401
