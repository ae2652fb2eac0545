"""marshmallow fields for the API's conventions: strict integers for money, RFC 3339 UTC times."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate

from marketplace.timefmt import rfc3339


class StrictInteger(fields.Integer):
    """An integer that is really an integer in the JSON: no floats, strings or booleans."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Must be a whole number (an integer, not a string or float).")
        return super()._validated(value)


def Cents(*, minimum: int = 0, **kwargs) -> StrictInteger:  # noqa: N802 - reads like a type
    """Money in integer minor units; at most ~$92 quadrillion fits a BIGINT, we cap far lower."""
    return StrictInteger(
        validate=validate.Range(min=minimum, max=10**12, error=f"Must be between {minimum} and 10^12 cents."),
        metadata={"description": "Integer minor units (cents)."},
        **kwargs,
    )


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 in and out; input must carry an offset, output is always Z."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", default_timezone=None, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value) if value is not None else None

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: in UTC it falls off the calendar
            raise ValidationError("Must be a time that, in UTC, lies between the years 1 and 9999.") from None


class Currency(fields.String):
    def __init__(self, **kwargs):
        kwargs.setdefault("load_default", "usd")
        super().__init__(
            validate=validate.Regexp(r"^[a-z]{3}$", error="Must be a lower-case ISO 4217 code such as usd."),
            **kwargs,
        )
