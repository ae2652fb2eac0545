"""Accounts: sign-up, login, keys stored hashed, roles, who-am-I."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from tests.factories import auth, make_admin, sign_up_brand, sign_up_worker, unique_email


def test_brand_sign_up_returns_the_key_once_and_stores_only_its_hash(client, db_session):
    brand, api_key = sign_up_brand(client)
    assert brand["id"].startswith("brand_") and api_key.startswith("mk_")
    stored = db_session.execute(sa.text("SELECT secret_hash, role FROM credentials")).one()
    assert stored.secret_hash == hashlib.sha256(api_key.encode()).hexdigest()
    assert stored.role == "brand"
    dump = str(db_session.execute(sa.text("SELECT * FROM credentials")).all())
    assert api_key not in dump
    me = client.get("/v1/me", headers=auth(api_key))
    assert me.status_code == 200
    assert me.get_json()["role"] == "brand" and me.get_json()["brand"]["id"] == brand["id"]


def test_second_sign_up_with_the_same_email_is_a_conflict(client):
    email = unique_email()
    assert client.post("/v1/brands", json={"name": "A", "email": email}).status_code == 201
    again = client.post("/v1/brands", json={"name": "B", "email": email.upper()})
    assert again.status_code == 409
    assert again.content_type == "application/problem+json"


def test_worker_signs_up_logs_in_and_sees_itself(client, db_session):
    worker, token = sign_up_worker(client)
    assert worker["id"].startswith("wrk_") and "password" not in worker and "password_hash" not in worker
    pw_hash = db_session.execute(sa.text("SELECT password_hash FROM workers")).scalar_one()
    assert pw_hash.startswith("$argon2")
    me = client.get("/v1/me", headers=auth(token)).get_json()
    assert me["role"] == "worker" and me["worker"]["id"] == worker["id"]


def test_wrong_password_and_unknown_email_look_the_same(client):
    sign_up_worker(client, password="correct horse battery")
    wrong = client.post("/v1/auth/token", json={"email": "nobody@example.com", "password": "x" * 12})
    assert wrong.status_code == 401
    assert wrong.get_json()["detail"] == "Email or password is wrong."


def test_worker_sign_up_validates_fields(client):
    response = client.post("/v1/workers", json={"email": "not-an-email", "password": "short",
                                                "display_name": "", "country": "GBR"})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"email", "password", "display_name", "country"}


def test_admin_key_from_the_cli_works_and_is_printed_last(client, runner):
    api_key = make_admin(runner, "ops@example.com")
    me = client.get("/v1/me", headers=auth(api_key)).get_json()
    assert me["role"] == "admin" and me["admin"]["email"] == "ops@example.com"


def test_missing_malformed_and_unknown_credentials_are_401(client):
    assert client.get("/v1/me").status_code == 401
    assert client.get("/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    response = client.get("/v1/me", headers=auth("mk_not-a-real-key"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/problem+json"


def test_api_key_in_the_query_string_is_not_accepted(client):
    _, api_key = sign_up_brand(client)
    assert client.get(f"/v1/me?api_key={api_key}").status_code == 401


def test_expired_worker_token_is_refused(client, db_session):
    _, token = sign_up_worker(client)
    db_session.execute(sa.text("UPDATE credentials SET expires_at = now() - interval '1 second' WHERE kind = 'token'"))
    db_session.commit()
    response = client.get("/v1/me", headers=auth(token))
    assert response.status_code == 401 and "expired" in response.get_json()["detail"]


def test_roles_are_enforced(client):
    _, worker_token = sign_up_worker(client)
    from tests.factories import brief_payload

    response = client.post("/v1/briefs", json=brief_payload(), headers=auth(worker_token))
    assert response.status_code == 403
    assert client.get("/v1/briefs", headers=auth(worker_token)).status_code == 403


# --- attempt limits (logins and sign-ups) --------------------------------------------------------------

PASSWORD = "correct horse battery"


def _login(client, email: str, password: str):
    return client.post("/v1/auth/token", json={"email": email, "password": password})


def _signed_up_email(client) -> str:
    email = unique_email("worker")
    assert client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": "Sam",
                                            "country": "GB"}).status_code == 201
    return email


def _limited(response) -> dict:
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    assert response.content_type == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    return response.get_json()


def test_the_eleventh_login_for_one_account_is_429_even_with_the_right_password(app, client, monkeypatch):
    """The real defaults (10 per 10 minutes per email, 100 per minute per address)."""
    from pathlib import Path

    from marketplace.config import from_environment

    defaults = from_environment(Path(app.instance_path))
    assert (defaults["LOGIN_RATE_LIMIT_PER_EMAIL"], defaults["LOGIN_RATE_LIMIT_PER_ADDRESS"]) == (
        "10/10minutes", "100/minute")
    for name in ("LOGIN_RATE_LIMIT_PER_EMAIL", "LOGIN_RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setitem(app.config, name, defaults[name])
    email = _signed_up_email(client)
    for _ in range(10):
        assert _login(client, email, "wrong password!").status_code == 401
    body = _limited(_login(client, email, PASSWORD))
    assert "10 per 600 seconds" in body["detail"]
    assert 500 <= int(_login(client, email.upper(), PASSWORD).headers["Retry-After"]) <= 600
    # Another account from the same address is not held back by this one's window.
    other = _signed_up_email(client)
    assert _login(client, other, PASSWORD).status_code == 200


def test_a_refused_login_is_answered_before_the_account_is_read_or_any_password_hashed(
        app, client, monkeypatch, sql_statements):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_EMAIL", "1/minute")
    email = _signed_up_email(client)
    assert _login(client, email, "wrong password!").status_code == 401
    with sql_statements as statements:
        _limited(_login(client, email, PASSWORD))  # the right password: the limit comes first
    # No SQL at all: the worker's row (and so its hash) was never read, so nothing was verified.
    assert statements == []


def test_the_address_limit_holds_back_every_email_from_one_address(app, client, monkeypatch, db_session):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "3/minute")
    emails = [unique_email("worker") for _ in range(3)]
    assert [_login(client, e, PASSWORD).status_code for e in emails] == [401, 401, 401]
    _limited(_login(client, unique_email("worker"), PASSWORD))
    # Sign-ups share the address's window, and a refused one creates nothing.
    _limited(client.post("/v1/workers", json={"email": unique_email(), "password": PASSWORD,
                                              "display_name": "Sam", "country": "GB"}))
    _limited(client.post("/v1/brands", json={"name": "Acme", "email": unique_email()}))
    assert db_session.execute(sa.text("SELECT (SELECT count(*) FROM workers) + (SELECT count(*) FROM brands)")
                              ).scalar_one() == 0
    # Another client address has its own window.
    other = client.post("/v1/auth/token", json={"email": emails[0], "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 401


def test_sign_ups_are_limited_per_email(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_EMAIL", "2/minute")
    email = unique_email()
    assert client.post("/v1/brands", json={"name": "A", "email": email}).status_code == 201
    assert client.post("/v1/brands", json={"name": "A", "email": email}).status_code == 409
    _limited(client.post("/v1/brands", json={"name": "A", "email": email}))
    body = {"email": email, "password": PASSWORD, "display_name": "Sam", "country": "GB"}
    assert client.post("/v1/workers", json=body).status_code == 201  # a worker sign-up is another window


def test_behind_trusted_proxies_the_client_address_comes_from_x_forwarded_for(app, monkeypatch):
    from marketplace import create_app

    proxied = create_app({"TESTING": True, "TRUSTED_PROXY_COUNT": 1, "LOGIN_RATE_LIMIT_PER_ADDRESS": "1/minute"})
    try:
        c = proxied.test_client()
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert c.post("/v1/auth/token", json={"email": unique_email(), "password": PASSWORD},
                      headers=first).status_code == 401
        _limited(c.post("/v1/auth/token", json={"email": unique_email(), "password": PASSWORD}, headers=first))
        # A client cannot prepend its own entries: only the last proxy's is trusted.
        spoofed = {"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}
        _limited(c.post("/v1/auth/token", json={"email": unique_email(), "password": PASSWORD}, headers=spoofed))
        assert c.post("/v1/auth/token", json={"email": unique_email(), "password": PASSWORD},
                      headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 401
    finally:
        with proxied.app_context():
            from marketplace.extensions import db

            db.engine.dispose()


def test_login_and_sign_up_document_their_429(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/v1/auth/token", "/v1/workers", "/v1/brands"):
        assert "429" in paths[path]["post"]["responses"], path
