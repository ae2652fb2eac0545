"""marshmallow fields for ISO codes, checked against the lists in workforce.codes."""

from __future__ import annotations

from marshmallow import ValidationError, fields

from marketplace.workforce.codes import country_code, language_code


class _Code(fields.String):
    convert = staticmethod(str)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Must be a string.")
        return type(self).convert(value)


class CountryCode(_Code):
    """An ISO 3166-1 alpha-2 country code, case-insensitive in, upper case out."""

    convert = staticmethod(country_code)


class LanguageCode(_Code):
    """An ISO 639-1 language code, case-insensitive in, lower case out."""

    convert = staticmethod(language_code)
