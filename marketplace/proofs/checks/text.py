"""Text proofs: normalisation, length/prohibited-phrase/disclosure rules, near-copy detection."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from . import FAIL, PASS, WARN, CheckResult

SHINGLE_SIZE = 3
NEAR_COPY_THRESHOLD = 0.8
DISCLOSURE_TAGS = ("ad", "sponsored")

_U64 = (1 << 64) - 1
# Versioned key: stored shingles are only comparable with shingles made the same way, so
# a change to normalise() or to the hashing must bump it (and re-shingle stored texts).
_SHINGLE_KEY = b"mkt.shingle.v1"

# A whole hashtag: not preceded by a word character or '#', not followed by a word
# character, so "#adventure", "#ad_campaign" and "x#ad" do not count and "#Ad!" does.
_DISCLOSURE = re.compile(
    r"(?<![\w#])#(?:" + "|".join(map(re.escape, DISCLOSURE_TAGS)) + r")(?!\w)"
)


def normalise(text: str) -> str:
    """Comparable form of free text: accent- and case-insensitive, punctuation-free words.

    NFKD folds compatibility forms (full-width letters, ligatures) and splits accents off
    so they can be dropped; casefold handles ß/ſ and friends. Punctuation, symbols and
    emoji become word breaks, except '#', which stays because hashtags are words here.
    Invisible format characters (zero-width space, soft hyphen) are deleted outright so
    they cannot split a word to dodge a prohibited phrase.
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    out: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char):
            continue
        category = unicodedata.category(char)
        if char == "#" or category[0] in "LN" or category in ("Mc", "Mn"):
            out.append(char)
        elif category == "Cf":
            continue
        else:  # punctuation, symbols, separators, control characters
            out.append(" ")
    return " ".join("".join(out).split())


# --- presence, length, prohibited phrases, disclosure -----------------------------------------


def text_check(
    text: str | None,
    *,
    min_length: int | None,
    max_length: int | None,
    prohibited: list[str],
    disclosure_required: bool,
    required: bool,
) -> list[CheckResult]:
    """The text rules of a brief, one CheckResult per rule that applies.

    Results are named "text" (presence and length), "prohibited" (only when the brief
    lists phrases) and "disclosure" (only when required). Length is counted in
    characters (NFC code points) of the text with surrounding whitespace stripped.
    """
    stripped = (text or "").strip()
    if not stripped:
        if required:
            return [CheckResult("text", FAIL, "text is required but none was submitted",
                                {"length": 0})]
        if disclosure_required:
            return [CheckResult(
                "disclosure", WARN,
                "no text submitted, so the #ad/#sponsored disclosure could not be checked; "
                "a reviewer should look",
            )]
        return [CheckResult("text", PASS, "no text submitted (none required)", {"length": 0})]

    results = [_length_result(len(unicodedata.normalize("NFC", stripped)), min_length, max_length)]
    if prohibited:
        results.append(_prohibited_result(stripped, prohibited))
    if disclosure_required:
        results.append(_disclosure_result(stripped))
    return results


def _length_result(length: int, min_length: int | None, max_length: int | None) -> CheckResult:
    data = {"length": length, "min_length": min_length, "max_length": max_length}
    if min_length is not None and length < min_length:
        return CheckResult(
            "text", FAIL,
            f"text is too short ({length} characters; at least {min_length} required)", data,
        )
    if max_length is not None and length > max_length:
        return CheckResult(
            "text", FAIL,
            f"text is too long ({length} characters; at most {max_length} allowed)", data,
        )
    return CheckResult("text", PASS, f"text length {length} characters is within bounds", data)


def find_prohibited(text: str, phrases: Iterable[str]) -> list[str]:
    """The phrases (as the brief wrote them) that occur in text as whole words.

    Both sides are normalised, so matching is case- and accent-insensitive and ignores
    punctuation; a phrase also matches as a hashtag ("coke" in "#coke").
    """
    haystack = normalise(text)
    found: list[str] = []
    for phrase in phrases:
        needle = normalise(phrase)
        if not needle or phrase in found:
            continue
        if re.search(r"(?<![^\s#])" + re.escape(needle) + r"(?![^\s#])", haystack):
            found.append(phrase)
    return found


def _prohibited_result(text: str, phrases: list[str]) -> CheckResult:
    found = find_prohibited(text, phrases)
    if not found:
        return CheckResult("prohibited", PASS, "no prohibited phrases", {"phrases": []})
    quoted = ", ".join(f'"{phrase}"' for phrase in found)
    noun = "phrase" if len(found) == 1 else "phrases"
    return CheckResult("prohibited", FAIL, f"text contains prohibited {noun} {quoted}",
                       {"phrases": found})


def has_disclosure(text: str) -> bool:
    """True when text carries #ad or #sponsored as a whole hashtag (any case, full-width too)."""
    return _DISCLOSURE.search(unicodedata.normalize("NFKC", text).casefold()) is not None


def _disclosure_result(text: str) -> CheckResult:
    if has_disclosure(text):
        return CheckResult("disclosure", PASS, "disclosure hashtag present")
    return CheckResult(
        "disclosure", FAIL, "text must disclose the sponsorship with #ad or #sponsored"
    )


# --- near-copy detection ---------------------------------------------------------------------


def _hash64(value: str) -> int:
    # blake2b, not hash(): stable across processes and restarts, so shingles can be stored.
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8, person=_SHINGLE_KEY).digest()
    return int.from_bytes(digest, "big")


def shingles(text: str, k: int = SHINGLE_SIZE) -> frozenset[int]:
    """Word k-shingles of the normalised text as unsigned 64-bit hashes.

    A text of fewer than k words is one shingle (the whole text); an empty one has none.
    """
    words = normalise(text).split()
    if not words:
        return frozenset()
    if len(words) < k:
        return frozenset({_hash64(" ".join(words))})
    return frozenset(_hash64(" ".join(words[i : i + k])) for i in range(len(words) - k + 1))


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets score 0.0 (nothing copied from nothing)."""
    set_a, set_b = set(a), set(b)
    union = len(set_a | set_b)
    return len(set_a & set_b) / union if union else 0.0


def near_copy_check(
    text: str,
    candidates: Iterable[tuple[str, frozenset[int] | list[int]]],
    threshold: float = NEAR_COPY_THRESHOLD,
    *,
    k: int = SHINGLE_SIZE,
) -> CheckResult:
    """Compare text with earlier submissions' shingles; name the most similar one at/over threshold.

    Candidates may come straight from a BIGINT[] column: signed values are folded back to
    unsigned. Ties go to the first listed. A text shorter than k words is a single
    shingle, so any identical short text ("love it!") scores 1.0; that is weak evidence,
    and such a match is a warn for a reviewer rather than a fail.
    """
    mine = shingles(text, k)
    if not mine:
        return CheckResult("near_copy", PASS, "no text to compare", {"threshold": threshold})
    best_id: str | None = None
    best = 0.0
    for sub_id, theirs in candidates:
        similarity = jaccard(mine, (value & _U64 for value in theirs))
        if best_id is None or similarity > best:
            best_id, best = sub_id, similarity
    data = {"threshold": threshold, "similarity": round(best, 4), "matched_submission_id": None}
    if best_id is None or best < threshold:
        return CheckResult("near_copy", PASS, "no near-copy among earlier submissions", data)
    data["matched_submission_id"] = best_id
    short = len(normalise(text).split()) < k
    return CheckResult(
        "near_copy",
        WARN if short else FAIL,
        f"near-copy of {best_id} (similarity {best:.2f})",
        data,
    )


# --- optional: MinHash signatures for a database prefilter ----------------------------------
#
# Not used by the checks. A job that cannot afford to load every earlier submission's
# shingles can store a short signature per text and pre-select candidates whose
# signatures agree in enough positions (or, banded, in a whole band), then run
# near_copy_check on those alone. Values are < 2**61, so they fit a signed BIGINT.

_MERSENNE61 = (1 << 61) - 1


@lru_cache(maxsize=8)
def _minhash_parameters(n: int) -> tuple[tuple[int, int], ...]:
    params = []
    for i in range(n):
        seed = hashlib.blake2b(f"minhash:{i}".encode(), digest_size=16, person=_SHINGLE_KEY)
        digest = seed.digest()
        a = int.from_bytes(digest[:8], "big") % (_MERSENNE61 - 1) + 1
        b = int.from_bytes(digest[8:], "big") % _MERSENNE61
        params.append((a, b))
    return tuple(params)


def minhash_signature(shingle_set: Iterable[int], n: int = 32) -> list[int]:
    """n MinHash values of a shingle set (empty set -> empty list); deterministic."""
    values = [value & _U64 for value in shingle_set]
    if not values:
        return []
    return [min((a * v + b) % _MERSENNE61 for v in values) for a, b in _minhash_parameters(n)]


def minhash_similarity(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity: the share of positions where two signatures agree."""
    if not a or len(a) != len(b):
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


__all__ = [
    "DISCLOSURE_TAGS",
    "NEAR_COPY_THRESHOLD",
    "SHINGLE_SIZE",
    "find_prohibited",
    "has_disclosure",
    "jaccard",
    "minhash_signature",
    "minhash_similarity",
    "near_copy_check",
    "normalise",
    "shingles",
    "text_check",
]
