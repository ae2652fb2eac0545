"""Accounts: brand and worker sign-up, worker login, and who-am-I."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required, schemas, service
from marketplace.http.blueprint import Blueprint
from marketplace.http.route_facts import ignores_idempotency_key

blp = Blueprint("accounts", __name__, description="Accounts and authentication")


@blp.route("/v1/brands", methods=["POST"])
@blp.arguments(schemas.BrandSignUp())
@blp.response(201, schemas.BrandCreated)
@blp.doc(description="Create a brand. The API key is returned once and only its hash is kept. "
         "Signing up twice with one email answers 409.")
@ignores_idempotency_key
def sign_up_brand(data):
    brand, api_key = service.sign_up_brand(data["name"], data["email"])
    return {"brand": brand, "api_key": api_key}


@blp.route("/v1/workers", methods=["POST"])
@blp.arguments(schemas.WorkerSignUp())
@blp.response(201, schemas.WorkerOut)
@ignores_idempotency_key
def sign_up_worker(data):
    return service.sign_up_worker(**data)


@blp.route("/v1/auth/token", methods=["POST"])
@blp.arguments(schemas.TokenRequest())
@blp.response(200, schemas.TokenOut)
@blp.doc(description="Exchange a worker's email and password for a bearer token.")
@ignores_idempotency_key
def issue_token(data):
    token, credential = service.log_in_worker(data["email"], data["password"])
    return {"token": token, "expires_at": credential.expires_at}


@blp.route("/v1/me", methods=["GET"])
@role_required("brand", "worker", "admin")
@blp.response(200, schemas.MeOut)
@blp.doc(security=BEARER)
def me():
    return service.describe(current_principal())
