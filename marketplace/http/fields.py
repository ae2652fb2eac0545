"""marshmallow fields for the API's conventions: strict integers for money, RFC 3339 UTC times."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate

from marketplace.db.clock import rfc3339


class StrictInteger(fields.Integer):
    """An integer that is really an integer in the JSON: no floats, strings or booleans."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Must be a whole number (an integer, not a string or float).")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """JSON true or false, nothing else: "yes", 1 or "false" (truthy in Python!) are refused."""

    truthy = frozenset({True})
    falsy = frozenset({False})

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


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


# ISO 4217 codes of the currencies Stripe charges in (https://docs.stripe.com/currencies), lower case.
CURRENCIES = frozenset("""
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf chf
    clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr
    ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur
    mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr
    sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof
    xpf yer zar zmw
""".split())


class Currency(fields.String):
    """A lower-case ISO 4217 code Stripe can charge in (default usd)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("load_default", "usd")
        super().__init__(
            validate=validate.OneOf(CURRENCIES, error="Must be a lower-case ISO 4217 code Stripe supports, such as usd."),
            metadata={"description": "Lower-case ISO 4217 code (one Stripe supports)", "example": "usd"},
            **kwargs,
        )
