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
