"""Problem documents for every error, size and media-type limits, idempotency keys, ops endpoints."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa

from tests.factories import auth, brief_payload, make_admin, sign_up_brand


def assert_problem(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    return body


def brief_count(db_session) -> int:
    return db_session.execute(sa.text("SELECT count(*) FROM briefs")).scalar_one()


def test_unknown_paths_and_methods_are_problem_documents(client):
    assert_problem(client.get("/v1/nope"), 404)
    response = client.delete("/v1/briefs")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_routing_is_answered_before_the_media_type_or_any_body_check(client, db_session):
    _, key = sign_up_brand(client)
    text = {**auth(key), "Content-Type": "text/plain"}
    response = client.put("/v1/briefs", data="title=x", headers=text)
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_problem(client.patch("/v1/nope", data="hello", headers=text), 404)
    assert_problem(client.patch("/v1/nope", data="x" * (2 * 1024 * 1024), headers=text), 404)
    assert_problem(client.post("/v1/nope?q=a%00b", data="hello", headers=text), 404)
    assert_problem(client.post("/v1/briefs", data="hello", headers=text), 415)
    assert brief_count(db_session) == 0


def test_a_ten_megabyte_body_is_413_and_saves_nothing(client, db_session):
    _, key = sign_up_brand(client)
    payload = brief_payload(audience="x" * (10 * 1024 * 1024))
    assert_problem(client.post("/v1/briefs", json=payload, headers=auth(key)), 413)
    assert brief_count(db_session) == 0


def test_non_json_and_wrong_media_types(client, db_session):
    _, key = sign_up_brand(client)
    headers = auth(key)
    assert_problem(client.post("/v1/briefs", data="title=x", headers={**headers,
                   "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_problem(client.post("/v1/briefs", data="<brief/>", headers={**headers, "Content-Type": "text/xml"}), 415)
    body = assert_problem(client.post("/v1/briefs", data="{not json", headers={**headers,
                          "Content-Type": "application/json"}), 400)
    assert "JSON" in body["detail"]
    assert_problem(client.post("/v1/briefs", data="[1, 2]", headers={**headers,
                   "Content-Type": "application/json"}), 422)
    assert_problem(client.post("/v1/briefs", data=b"\xff\xfe\x00garbage", headers={**headers,
                   "Content-Type": "application/json"}), 400)
    assert brief_count(db_session) == 0


def test_same_idempotency_key_and_body_returns_the_first_response(client, db_session):
    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "create-brief-1"}
    first = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    second = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert brief_count(db_session) == 1


def test_same_idempotency_key_with_another_body_is_409(client, db_session):
    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "create-brief-2"}
    assert client.post("/v1/briefs", json=brief_payload(), headers=headers).status_code == 201
    body = assert_problem(client.post("/v1/briefs", json=brief_payload(title="Other"), headers=headers), 409)
    assert "Idempotency-Key" in body["errors"]
    assert brief_count(db_session) == 1


def test_idempotency_keys_are_per_caller_and_validation_errors_replay(client, db_session):
    _, key_a = sign_up_brand(client, "A")
    _, key_b = sign_up_brand(client, "B")
    same = {"Idempotency-Key": "shared-key"}
    assert client.post("/v1/briefs", json=brief_payload(), headers={**auth(key_a), **same}).status_code == 201
    assert client.post("/v1/briefs", json=brief_payload(), headers={**auth(key_b), **same}).status_code == 201
    bad = {**auth(key_a), "Idempotency-Key": "bad-one"}
    assert client.post("/v1/briefs", json=brief_payload(budget_cents=-1), headers=bad).status_code == 422
    replay = client.post("/v1/briefs", json=brief_payload(budget_cents=-1), headers=bad)
    assert replay.status_code == 422 and replay.headers["Idempotent-Replayed"] == "true"
    assert brief_count(db_session) == 2
    too_long = client.post("/v1/briefs", json=brief_payload(), headers={**auth(key_a), "Idempotency-Key": "k" * 256})
    assert_problem(too_long, 422)


def test_concurrent_requests_with_one_key_create_one_brief(app, db_session):
    import threading

    client = app.test_client()
    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "racy"}
    results = []
    barrier = threading.Barrier(8)

    def post():
        with app.test_client() as c:
            barrier.wait()
            results.append(c.post("/v1/briefs", json=brief_payload(), headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert brief_count(db_session) == 1
    assert set(results) <= {201, 409} and 201 in results


def test_openapi_spec_lists_every_route_and_docs_render(client, app):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = rule.rule.replace("<string:", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, (path, method)
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"/v1/briefs" in docs.data


def test_health_readiness_and_metrics(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"] == {
        "database": "ok", "redis": "ok", "storage": "ok (a local directory)",
        "rate_limits": "ok (Redis, shared by every process)"}
    client.get("/v1/nope")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and b"http_requests_total" in metrics.data
    assert metrics.headers["Content-Type"].count("charset=") == 1  # strict scrapers refuse a repeated one


def test_readyz_is_503_when_redis_is_down(app):
    from marketplace import create_app

    broken = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0"})
    body = assert_problem(broken.test_client().get("/readyz"), 503)
    assert "redis" in body["detail"]


def test_readyz_is_503_when_postgres_is_down(app):
    from marketplace import create_app

    broken = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/x",
                         "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}}})
    body = assert_problem(broken.test_client().get("/readyz"), 503)
    assert "database" in body["detail"]


def test_logs_carry_no_secrets(client, caplog):
    caplog.set_level(logging.INFO)
    from marketplace.ops.observability import JsonFormatter

    _, key = sign_up_brand(client)
    client.get("/v1/me", headers=auth(key))
    client.post("/v1/auth/token", json={"email": "x@example.com", "password": "hunter2hunter2"})
    formatter = JsonFormatter()
    lines = "\n".join(formatter.format(r) for r in caplog.records)
    assert "/v1/me" in lines
    assert key not in lines and key[3:] not in lines and "hunter2" not in lines
    record = logging.LogRecord("x", logging.ERROR, "", 0, f"failed with {key}", None, None)
    assert key not in formatter.format(record)


PUBLIC = {("POST", "/v1/brands"), ("POST", "/v1/workers"), ("POST", "/v1/auth/token"),
          ("POST", "/v1/webhooks/stripe"), ("POST", "/v1/webhooks/stripe/connect"),
          # A signed link is its own credential (tests/test_newcomer.py), as a presigned URL is.
          ("GET", "/v1/shared/screenshots/<string:submission_id>")}


def test_every_api_route_but_sign_up_login_and_webhooks_needs_credentials(client, app):
    """Roles are enforced on every route: without a bearer secret each one answers 401."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<string:{name}>", "x_1").replace(f"<{name}>", "x_1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (method, rule.rule) in PUBLIC:
                continue
            response = client.open(path, method=method, json={} if method == "POST" else None)
            assert response.status_code == 401, (method, rule.rule, response.status_code)
            assert response.content_type == "application/problem+json"
            checked += 1
    assert checked >= 25


def test_a_worker_token_cannot_act_as_a_brand_or_admin(client, runner):
    from tests.factories import sign_up_worker

    _, token = sign_up_worker(client)
    for method, path in [("POST", "/v1/briefs"), ("GET", "/v1/briefs"), ("POST", "/v1/briefs/plan"),
                         ("GET", "/v1/review/submissions"), ("POST", "/v1/review/decisions"),
                         ("POST", "/v1/payout-batches"), ("POST", "/v1/conversions")]:
        response = client.open(path, method=method, json={} if method == "POST" else None, headers=auth(token))
        assert response.status_code == 403, (method, path, response.status_code)


def test_every_list_takes_limits_up_to_500_and_refuses_more(client, runner):
    from tests.factories import sign_up_worker

    _, brand_key = sign_up_brand(client)
    _, worker_token = sign_up_worker(client)
    from tests.factories import make_admin

    admin_key = make_admin(runner)
    lists = {brand_key: ["/v1/briefs"], worker_token: ["/v1/tasks", "/v1/me/claims", "/v1/me/submissions"],
             admin_key: ["/v1/review/submissions", "/v1/payout-batches"]}
    for secret, paths in lists.items():
        for path in paths:
            ok = client.get(f"{path}?limit=500", headers=auth(secret))
            assert ok.status_code == 200 and set(ok.get_json()) >= {"data", "next_cursor"}, path
            assert_problem(client.get(f"{path}?limit=501", headers=auth(secret)), 422)
            assert_problem(client.get(f"{path}?limit=abc", headers=auth(secret)), 422)


def test_a_key_whose_request_died_midway_runs_again_after_a_while(client, db_session):
    """A process killed between claiming a key and storing its response leaves the key 'in progress':
    a retry soon after is told to wait (409 + Retry-After); once it is stale, the retry runs for real."""
    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "died-midway"}
    first = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert first.status_code == 201
    # Make the record look like the moment after the claim, before any response was stored.
    db_session.execute(sa.text("DELETE FROM task_groups; DELETE FROM briefs"))
    db_session.execute(sa.text("UPDATE idempotency_records SET status_code = NULL, body = NULL, created_at = now()"))
    db_session.commit()
    waiting = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert assert_problem(waiting, 409) and waiting.headers["Retry-After"] == "1"
    assert brief_count(db_session) == 0
    db_session.execute(sa.text("UPDATE idempotency_records SET created_at = now() - interval '3 minutes'"))
    db_session.commit()
    retried = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert brief_count(db_session) == 1
    replay = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert replay.get_json()["id"] == retried.get_json()["id"] and replay.headers["Idempotent-Replayed"] == "true"


def test_cursors_shaped_like_ours_but_forged_are_422_on_every_list(client, runner):
    """A cursor is base64 JSON: a client can forge one. Times off the edge of the calendar once
    moved to UTC, wrong key types, numbers past the column's range and wrong lengths are a 422,
    never a 500."""
    import base64
    import json

    from tests.factories import auth, make_admin, sign_up_brand, sign_up_worker

    def forged(*values) -> str:
        return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")

    _, key = sign_up_brand(client)
    _, token = sign_up_worker(client)
    admin = make_admin(runner)
    cursors = [forged("9999-12-31T23:59:59-01:00", "x"), forged("0001-01-01T00:00:00+01:00", "x"),
               forged("2026-01-01T00:00:00Z", 5), forged("2026-01-01T00:00:00Z"),
               forged("2026-01-01T00:00:00Z", "brief_x", True), forged("2026-01-01T00:00:00Z", "x", "y"),
               forged("2026-01-01T00:00:00Z", "brief_x", 2**40)]  # the listing's position: past INTEGER
    lists = [("/v1/briefs", key), ("/v1/review/submissions", admin), ("/v1/tasks", token),
             ("/v1/me/claims", token), ("/v1/me/submissions", token), ("/v1/payout-batches", admin)]
    for path, secret in lists:
        for cursor in cursors:
            response = client.get(path, query_string={"cursor": cursor}, headers=auth(secret))
            assert response.status_code == 422, (path, cursor, response.get_json())
            assert response.get_json()["errors"] == {"cursor": ["Not a cursor this API issued."]}
    # A real one still pages.
    good = forged("2026-01-01T00:00:00Z", "brief_zzz")
    assert client.get("/v1/briefs", query_string={"cursor": good}, headers=auth(key)).status_code == 200


def test_a_create_whose_answer_was_lost_is_not_made_twice_by_its_retry(client, db_session, monkeypatch):
    """The brief was written, then the connection dropped before the answer: 503, and the
    Idempotency-Key's record is let go so the retry runs for real. The retry must find that brief
    (201, same id), not write a second one."""
    import psycopg

    from marketplace.db import direct

    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "lost-answer-1"}
    real_write = direct.write
    lost = []

    def write_then_lose_the_connection(*args, **kwargs):
        rows = real_write(*args, **kwargs)
        if not lost:
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return rows

    monkeypatch.setattr(direct, "write", write_then_lose_the_connection)
    first = client.post("/v1/briefs", json=brief_payload(title="Once"), headers=headers)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    retry = client.post("/v1/briefs", json=brief_payload(title="Once"), headers=headers)
    assert retry.status_code == 201, retry.get_json()
    assert db_session.execute(sa.text("SELECT count(*) FROM briefs WHERE title = 'Once'")).scalar_one() == 1
    assert db_session.execute(sa.text("SELECT count(*) FROM task_groups")).scalar_one() == 2
    assert retry.get_json()["id"] == db_session.execute(sa.text("SELECT id FROM briefs")).scalar_one()
    # Replayed from now on; another caller's same key is another brief.
    assert client.post("/v1/briefs", json=brief_payload(title="Once"), headers=headers).get_json() == retry.get_json()
    _, other = sign_up_brand(client, "Other")
    theirs = client.post("/v1/briefs", json=brief_payload(title="Once"), headers={**auth(other), "Idempotency-Key": "lost-answer-1"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != retry.get_json()["id"]


TABLES = ("brands", "workers", "briefs", "task_groups", "submissions", "conversions", "idempotency_records")


def row_counts(app) -> dict[str, int]:
    """Counted on a connection of its own: a test client request shares the db_session's context."""
    from marketplace.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def test_text_the_database_cannot_store_is_a_4xx_everywhere_and_changes_nothing(app, client, runner, standin,
                                                                                   tmp_path, monkeypatch):
    """NUL (PostgreSQL text cannot hold it) and unpaired surrogates (UTF-8 cannot encode them), in
    bodies, forms, paths, query strings and cursors; JSON nested past the parser's limit or with an
    integer of thousands of digits; times that fall off the calendar in UTC."""
    import base64
    import io

    from tests.factories.proofs import claimed_task, proof_brief

    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    admin = auth(make_admin(runner))
    _, key = sign_up_brand(client, "Hostile")
    brand = auth(key)
    before = row_counts(app)
    nul_cursor = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00Z","\\u0000"]').decode().rstrip("=")

    def expect(response, status: int, field: str | None = None):
        body = assert_problem(response, status)
        if field is not None:
            assert field in body["errors"], body
        return body

    expect(client.post("/v1/brands", json={"name": "a\x00b", "email": "n@example.com"}), 422, "name")
    expect(client.post("/v1/workers", json={"email": "s@example.com", "password": "correct horse \ud800",
                                            "display_name": "S", "country": "GB"}), 422, "password")
    expect(client.post("/v1/auth/token", json={"email": "\x00", "password": "x"}), 422, "email")
    expect(client.post("/v1/briefs", json=brief_payload(title="spring \x00"), headers=brand), 422, "title")
    bad_group = brief_payload()
    bad_group["task_groups"][0]["name"] = "\udc00"
    expect(client.post("/v1/briefs", json=bad_group, headers=brand), 422, "task_groups.0.name")
    expect(client.get("/v1/briefs/%00", headers=brand), 404)
    expect(client.post("/v1/briefs/%00/fund", headers=brand), 404)
    expect(client.get("/t/%00"), 404)
    expect(client.get("/v1/tasks?brief=%00", headers=auth(token)), 422, "brief")
    expect(client.get("/v1/review/submissions?brief=%00", headers=admin), 422, "brief")
    expect(client.get(f"/v1/briefs?cursor={nul_cursor}", headers=brand), 422, "cursor")
    expect(client.post("/v1/review/decisions", json={"submission_ids": ["sub_\x00x"], "decision": "approve"},
                       headers=admin), 422, "submission_ids.0")
    expect(client.post("/v1/conversions", json={"code": "abc", "external_id": "o\x00", "value_cents": 1,
                                                "occurred_at": "2026-03-01T12:00:00Z"}, headers=brand), 422)
    expect(client.post(f"/v1/tasks/{held['task']['id']}/submissions", headers=auth(token),
                       data={"text": "caption \x00 #ad", "screenshot": (io.BytesIO(b"\x89PNG"), "s.png", "image/png")},
                       content_type="multipart/form-data"), 422, "text")
    expect(client.post("/v1/brands", data='{"a":' * 3000, content_type="application/json"), 400)
    expect(client.post("/v1/review/decisions", data="[" * 3000, content_type="application/json",
                       headers=admin), 400)
    expect(client.post("/v1/briefs", data='{"budget_cents": ' + "9" * 5000 + "}", content_type="application/json",
                       headers=brand), 400)
    expect(client.post("/v1/briefs", json=brief_payload(starts_at="0001-01-01T00:00:00+01:00"), headers=brand),
           422, "starts_at")
    expect(client.post("/v1/briefs", json=brief_payload(ends_at="9999-12-31T23:59:59-01:00"), headers=brand),
           422, "ends_at")

    expect(client.post("/v1/briefs", json=brief_payload(), headers={**brand, "Idempotency-Key": "k\x00"}),
           422, "Idempotency-Key")
    # Refused where the body is read, so a bad key still hears 401 first, as on every route.
    assert client.post("/v1/briefs", json=brief_payload(title="\x00"), headers=auth("mk_nope")).status_code == 401
    assert client.post("/v1/conversions", json={"external_id": "\x00"}, headers=auth("mk_nope")).status_code == 401

    assert row_counts(app) == before
    stored = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert stored == []  # the refused upload left no file behind


def test_an_unknown_query_parameter_is_422_not_silently_ignored(client, runner):
    _, key = sign_up_brand(client)
    admin = auth(make_admin(runner))
    for path, headers in [("/v1/briefs?stauts=live", auth(key)), ("/v1/review/submissions?breif=x", admin),
                          ("/v1/payout-batches?limt=5", admin)]:
        body = assert_problem(client.get(path, headers=headers), 422)
        assert path.split("?")[1].split("=")[0] in body["errors"], body
    assert client.get("/v1/briefs?status=live&limit=5", headers=auth(key)).status_code == 200


def test_the_spec_documents_errors_as_problem_documents_and_the_idempotency_key(client):
    spec = client.get("/openapi.json").get_json()
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem) and problem["status"]["type"] == "integer"
    for name, response in spec["components"]["responses"].items():
        if "content" in response:
            assert list(response["content"]) == ["application/problem+json"], name
    create = spec["paths"]["/v1/briefs"]["post"]
    assert {"201", "400", "401", "403", "409", "413", "415", "422"} <= set(create["responses"])
    assert {"$ref": "#/components/parameters/Idempotency-Key"} in create["parameters"]
    assert "Idempotency-Key" not in json.dumps(spec["paths"]["/v1/brands"]["post"].get("parameters", []))
    assert {"401", "403", "404"} <= set(spec["paths"]["/v1/briefs/{brief_id}"]["get"]["responses"])
    assert "429" in spec["paths"]["/v1/task-groups/{group_id}/claim"]["post"]["responses"]
    webhook = spec["paths"]["/v1/webhooks/stripe"]["post"]
    assert {"200", "400"} <= set(webhook["responses"])
    assert any(p.get("name") == "Stripe-Signature" for p in webhook["parameters"])


def test_the_content_bank_documents_both_of_its_media_types(client):
    """GET …/assets answers JSON, or CSV with ?format=csv: the spec says both (it said JSON only)."""
    answer = client.get("/openapi.json").get_json()["paths"]["/v1/briefs/{brief_id}/assets"]["get"]
    content = answer["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/AssetPage"}
    assert content["text/csv"]["schema"]["type"] == "string"


def test_a_key_let_go_between_its_reservation_and_the_read_is_reserved_again_not_a_500(client, db_session, monkeypatch):
    """Two requests with one key: the second's reservation loses to the first, which then ends in a
    5xx and lets the key go before the second reads the record. The second reserves it again and
    runs (201), rather than read a row that is gone."""
    from marketplace.db import direct
    from marketplace.http import idempotency

    _, key = sign_up_brand(client)
    real_write, lost = direct.write, []

    def write(statement, params, **kwargs):
        rows = real_write(statement, params, **kwargs)
        if statement is idempotency._AUTHENTICATE_AND_RESERVE and not lost:
            # As if another request held the key at this moment (this insert found its row), then
            # ended in a 5xx and let the key go before this one reads the record.
            lost.append(params["key"])
            real_write(sa.text("DELETE FROM idempotency_records WHERE id = :id"), {"id": params["id"]})
            return [{**rows[0], "reserved": None}]
        return rows

    monkeypatch.setattr(direct, "write", write)
    headers = {**auth(key), "Idempotency-Key": "let-go-1"}
    made = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert lost == ["let-go-1"]
    assert made.status_code == 201, made.get_json()
    replay = client.post("/v1/briefs", json=brief_payload(), headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json()["id"] == made.get_json()["id"]
    assert brief_count(db_session) == 1


def test_an_idempotency_key_is_reserved_only_for_a_caller_let_in(client, db_session):
    """The caller is authenticated in the reservation's own statement: an unknown, revoked or
    expired credential hears 401 and reserves nothing; a valid one reserves its key once."""
    import hashlib

    def records() -> int:
        db_session.commit()
        return db_session.execute(sa.text("SELECT count(*) FROM idempotency_records")).scalar_one()

    _, key = sign_up_brand(client)
    assert client.post("/v1/briefs", json=brief_payload(), headers={**auth("mk_nope"), "Idempotency-Key": "k1"}).status_code == 401
    assert records() == 0
    made = client.post("/v1/briefs", json=brief_payload(), headers={**auth(key), "Idempotency-Key": "k1"})
    assert made.status_code == 201 and records() == 1
    again = client.post("/v1/briefs", json=brief_payload(), headers={**auth(key), "Idempotency-Key": "k1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == made.get_json()
    digest = hashlib.sha256(key.encode()).hexdigest()
    db_session.execute(sa.text("UPDATE credentials SET expires_at = now() - interval '1 second' WHERE secret_hash = :h"),
                       {"h": digest})
    db_session.commit()
    expired = client.post("/v1/briefs", json=brief_payload(), headers={**auth(key), "Idempotency-Key": "k2"})
    assert expired.status_code == 401 and "expired" in expired.get_json()["detail"]
    db_session.execute(sa.text("UPDATE credentials SET expires_at = NULL, revoked_at = now() WHERE secret_hash = :h"),
                       {"h": digest})
    db_session.commit()
    # Revoked: refused at once, even for a key whose answer is recorded.
    assert client.post("/v1/briefs", json=brief_payload(), headers={**auth(key), "Idempotency-Key": "k1"}).status_code == 401
    assert client.post("/v1/briefs", json=brief_payload(), headers={**auth(key), "Idempotency-Key": "k3"}).status_code == 401
    assert records() == 1
