"""Promo codes of claims: readable, unique platform-wide, made inside the claim's transaction.

A code is a prefix from the brand's name and a random part, e.g. ``NORTHW-K7M3QX9P``. The random
part is drawn from an alphabet without the characters people confuse when they read a code off a
video or type it at a checkout (0/O, 1/I/L, and U, which reads as V); the prefix keeps only the
letters A–Z of the brand's name (no digits, so its O and I are never mistaken for 0 and 1).
Codes are stored in upper case and looked up forgivingly (`normalise`): any case, the hyphen optional.

Uniqueness is the database's: claims has a unique index on promo_code, and the claim inserts with
ON CONFLICT (promo_code) DO NOTHING, drawing a new code when a row did not go in. With 29^8 ≈ 5·10^11
random parts per prefix, a collision is rare enough that the retry almost never runs.
"""

from __future__ import annotations

import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0 O 1 I L U
RANDOM_LENGTH = 8
PREFIX_LENGTH = 6
FALLBACK_PREFIX = "PROMO"  # a brand name without a Latin letter
MAX_LENGTH = 32  # claims.promo_code


def prefix_for(brand_name: str | None) -> str:
    """The letters A–Z of the brand's name (accents folded: Café → CAFE), up to PREFIX_LENGTH."""
    folded = unicodedata.normalize("NFKD", brand_name or "").encode("ascii", "ignore").decode().upper()
    letters = "".join(ch for ch in folded if "A" <= ch <= "Z")[:PREFIX_LENGTH]
    return letters or FALLBACK_PREFIX


def random_part() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def new_promo_code(brand_name: str | None) -> str:
    return f"{prefix_for(brand_name)}-{random_part()}"


def normalise(code: str) -> str:
    """The stored form of a code as a buyer may have typed it at a checkout: any case, with or
    without the hyphen (or a space in its place), and a zero in the letters of the prefix read as
    the O it must be. Codes are PREFIX-RANDOM with a fixed-length random part, so splitting the
    compacted text before its last RANDOM_LENGTH characters gives the one code it can mean."""
    compact = "".join(ch for ch in code.upper() if ch.isalnum())
    if len(compact) <= RANDOM_LENGTH:
        return compact  # no prefix: no code looks like this
    prefix, rest = compact[:-RANDOM_LENGTH], compact[-RANDOM_LENGTH:]
    return f"{prefix.replace('0', 'O')}-{rest}"
