"""The code lists a profile and an eligibility rule are checked against: ISO 3166-1 alpha-2
countries and ISO 639-1 languages, from pycountry (the ISO tables, kept up to date upstream)."""

from __future__ import annotations

import pycountry
from marshmallow import ValidationError

COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
LANGUAGES = frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def country_code(value: str) -> str:
    """The ISO 3166-1 alpha-2 code (upper case), or a ValidationError naming what is wrong."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in COUNTRIES:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (such as GB).")
    return code


def language_code(value: str) -> str:
    """The ISO 639-1 code (lower case), or a ValidationError."""
    code = value.strip().lower() if isinstance(value, str) else ""
    if code not in LANGUAGES:
        raise ValidationError(f"{value!r} is not an ISO 639-1 language code (such as en).")
    return code
