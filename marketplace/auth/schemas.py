"""Request and response shapes for accounts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.auth.service import BRAND_SCOPES, MAX_KEY_HOURS
from marketplace.http.fields import UTCDateTime

EMAIL = [validate.Length(max=320), validate.Email(error="Must be a valid email address.")]


BRAND_SIGN_UP_EXAMPLE = {"name": "Northwind Coffee", "email": "growth@northwind.example"}
WORKER_SIGN_UP_EXAMPLE = {"email": "ada@example.com", "password": "correct horse battery staple",
                          "display_name": "Ada", "country": "GB"}
TOKEN_REQUEST_EXAMPLE = {"email": "ada@example.com", "password": "correct horse battery staple"}


class BrandSignUp(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.String(required=True, validate=EMAIL)


class BrandOut(Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    created_at = UTCDateTime()


class BrandCreated(Schema):
    brand = fields.Nested(BrandOut)
    api_key = fields.String(metadata={"description": "Shown once; only its hash is kept."})


class WorkerSignUp(Schema):
    email = fields.String(required=True, validate=EMAIL)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=200))
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    country = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Must be an ISO 3166-1 alpha-2 code such as GB."),
    )


class WorkerOut(Schema):
    id = fields.String()
    email = fields.String()
    display_name = fields.String()
    country = fields.String()
    created_at = UTCDateTime()


class AdminOut(Schema):
    id = fields.String()
    email = fields.String()
    created_at = UTCDateTime()


class TokenRequest(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200))


class TokenOut(Schema):
    token = fields.String()
    expires_at = UTCDateTime()



API_KEY_EXAMPLE = {"name": "Reporting dashboard", "scopes": ["briefs:read"], "expires_in_hours": 720}
ROLL_EXAMPLE = {"expires_in_hours": 24}
_HOURS = validate.Range(min=1, max=MAX_KEY_HOURS)


class ApiKeyIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(fields.String(validate=validate.OneOf(BRAND_SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(BRAND_SCOPES)),
                         metadata={"description": "Any of " + ", ".join(BRAND_SCOPES) + "."})
    expires_in_hours = fields.Integer(load_default=None, allow_none=True, validate=_HOURS,
                                      metadata={"description": "Unset: the key never expires."})


class ApiKeyRoll(Schema):
    expires_in_hours = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_KEY_HOURS), metadata={
        "description": "How long the old key keeps working (0: it stops now)."})


class ApiKeyOut(Schema):
    id = fields.String()
    name = fields.String()
    scopes = fields.List(fields.String(), attribute="scope_list")
    prefix = fields.String(allow_none=True, metadata={
        "description": "The secret's visible start, to tell keys apart (null for keys made before prefixes)."})
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(allow_none=True)
    expires_at = UTCDateTime(allow_none=True)


class ApiKeyCreated(ApiKeyOut):
    secret = fields.String(metadata={"description": "Shown once; only its hash is kept."})


class ApiKeyPage(Schema):
    data = fields.List(fields.Nested(ApiKeyOut))
    next_cursor = fields.String(allow_none=True)
