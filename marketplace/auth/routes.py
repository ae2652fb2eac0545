"""Accounts: brand and worker sign-up, worker login, and who-am-I."""

from __future__ import annotations

from flask import request

from marketplace.auth import (
    BEARER,
    current_principal,
    role_required,
    schemas,
    scope_required,
    service,
)
from marketplace.http import ratelimit
from marketplace.http.blueprint import Blueprint
from marketplace.http.client import client_device
from marketplace.http.pagination import ListArgs
from marketplace.http.route_facts import ignores_idempotency_key, rate_limited, shows_secret
from marketplace.workforce import schemas as workforce_schemas
from marketplace.workforce import service as workforce

# Every attempt counts, right or wrong, and a refused one is answered before any password is hashed.
ATTEMPT_LIMITS = ("Attempts are limited per email (LOGIN_RATE_LIMIT_PER_EMAIL, default 10 per 10 minutes, for "
                  "logins and for each kind of sign-up apart) and per client address (LOGIN_RATE_LIMIT_PER_ADDRESS, "
                  "default 100 per minute, logins and sign-ups together): every attempt counts, right or wrong; "
                  "past either limit, 429 with Retry-After, even with the right password.")

blp = Blueprint("accounts", __name__, description="Accounts and authentication")


@blp.route("/v1/brands", methods=["POST"])
@blp.arguments(schemas.BrandSignUp(), example=schemas.BRAND_SIGN_UP_EXAMPLE)
@blp.response(201, schemas.BrandCreated)
@blp.doc(description="Create a brand. The API key is returned once and only its hash is kept. "
         "Signing up twice with one email answers 409. " + ATTEMPT_LIMITS)
@ignores_idempotency_key
@rate_limited
@shows_secret
def sign_up_brand(data):
    ratelimit.check_account_attempt("brand-sign-up", data["email"], request.remote_addr)
    brand, api_key = service.sign_up_brand(data["name"], data["email"])
    return {"brand": brand, "api_key": api_key}


@blp.route("/v1/workers", methods=["POST"])
@blp.arguments(schemas.WorkerSignUp(), example=schemas.WORKER_SIGN_UP_EXAMPLE)
@blp.response(201, schemas.WorkerOut)
@blp.doc(description="Create a worker account; then log in with POST /v1/auth/token. " + ATTEMPT_LIMITS)
@ignores_idempotency_key
@rate_limited
def sign_up_worker(data):
    ratelimit.check_account_attempt("worker-sign-up", data["email"], request.remote_addr)
    return service.sign_up_worker(**data, seen_from=client_device())


@blp.route("/v1/auth/token", methods=["POST"])
@blp.arguments(schemas.TokenRequest(), example=schemas.TOKEN_REQUEST_EXAMPLE)
@blp.response(200, schemas.TokenOut)
@blp.doc(description="Exchange a worker's email and password for a bearer token. " + ATTEMPT_LIMITS)
@ignores_idempotency_key
@rate_limited
@shows_secret
def issue_token(data):
    ratelimit.check_account_attempt("login", data["email"], request.remote_addr)
    token, credential = service.log_in_worker(data["email"], data["password"], seen_from=client_device())
    return {"token": token, "expires_at": credential.expires_at}


@blp.route("/v1/me", methods=["GET"])
@role_required("brand", "worker", "admin")
@blp.response(200, workforce_schemas.WorkerMeOut)
@blp.doc(security=BEARER, summary="Who the bearer secret belongs to",
         description="The caller's role and account: a brand, a worker (with its profile, standing and "
                     "reputation, computed from our records) or an admin.")
def me():
    principal = current_principal()
    if principal.role == "worker":
        return {"role": "worker", "worker": workforce.view(principal.id)}
    return service.describe(principal)


KEYS_WRITE = "Needs a brand's API key with the keys:write scope (the sign-up key has it)."


@blp.route("/v1/api-keys", methods=["POST"])
@role_required("brand")
@scope_required("keys:write")
@blp.arguments(schemas.ApiKeyIn(), example=schemas.API_KEY_EXAMPLE)
@blp.response(201, schemas.ApiKeyCreated)
@blp.doc(security=BEARER, summary="Make an API key", description=(
    "A new key for your brand with a name, the scopes it may use and, optionally, a lifetime in hours. The "
    "secret is in this answer only; we keep its hash. 422 for an unknown scope or hours out of range. " + KEYS_WRITE))
@ignores_idempotency_key
@shows_secret
def create_api_key(data):
    secret, key = service.create_api_key(current_principal(), data["name"], data["scopes"], data["expires_in_hours"])
    return _with_secret(key, secret)


@blp.route("/v1/api-keys", methods=["GET"])
@role_required("brand")
@scope_required("keys:write")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, schemas.ApiKeyPage)
@blp.doc(security=BEARER, summary="Your API keys, newest first", description=(
    "Every key of your brand not revoked: name, scopes, visible prefix, when it was made, last used and "
    "expires. Never the secret. " + KEYS_WRITE))
def list_api_keys(args):
    rows, next_cursor = service.list_api_keys(current_principal(), limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/api-keys/<string:key_id>", methods=["DELETE"])
@role_required("brand")
@scope_required("keys:write")
@blp.response(204)
@blp.doc(security=BEARER, summary="Revoke an API key", description=(
    "Revoked at once: the next request with it is 401. 404 for a key that is not yours or is revoked "
    "already. " + KEYS_WRITE))
def revoke_api_key(key_id):
    service.revoke_api_key(current_principal(), key_id)


@blp.route("/v1/api-keys/<string:key_id>/roll", methods=["POST"])
@role_required("brand")
@scope_required("keys:write")
@blp.arguments(schemas.ApiKeyRoll(), example=schemas.ROLL_EXAMPLE)
@blp.response(201, schemas.ApiKeyCreated)
@blp.doc(security=BEARER, summary="Roll an API key", description=(
    "A new key with the same name and scopes, its secret in this answer only. The old key keeps working "
    "for expires_in_hours (0: it stops now), then answers 401. A key rolls once: rolling it again (or twice "
    "at once) is 409 naming the key that replaced it. " + KEYS_WRITE))
@ignores_idempotency_key
@shows_secret
def roll_api_key(data, key_id):
    secret, key = service.roll_api_key(current_principal(), key_id, data["expires_in_hours"])
    return _with_secret(key, secret)


def _with_secret(key, secret: str):
    key.secret = secret  # on this answer's object only: never a column
    return key
