"""Request and response shapes for accounts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

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

