"""Text check: normalisation, length, prohibited phrases, disclosure and near-copies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketplace.proofs.checks import FAIL, PASS, WARN
from marketplace.proofs.checks.text import (
    find_prohibited,
    has_disclosure,
    jaccard,
    minhash_signature,
    minhash_similarity,
    near_copy_check,
    normalise,
    shingles,
    text_check,
)

REVIEW = (
    "I tried the new Sparkle cola at the beach yesterday and honestly it was the most "
    "refreshing drink I have had all summer, crisp and not too sweet. #ad"
)


def rules(**overrides):
    arguments = {
        "min_length": None,
        "max_length": None,
        "prohibited": [],
        "disclosure_required": False,
        "required": True,
    }
    arguments.update(overrides)
    return arguments


def by_name(results):
    return {result.name: result for result in results}


# --- normalise -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Héllo,   WORLD!!", "hello world"),
        ("Crème Brûlée", "creme brulee"),
        ("STRASSE straße", "strasse strasse"),
        ("ｆｕｌｌ－ｗｉｄｔｈ", "full width"),
        ("line\nbreak\ttab", "line break tab"),
        ("Love it!#ad", "love it #ad"),
        ("emoji🔥in between", "emoji in between"),
        ("zero\u200bwidth", "zerowidth"),
        ("  ", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


# --- presence and length ---------------------------------------------------------------------


def test_missing_required_text_fails() -> None:
    for text in (None, "", "   \n "):
        [result] = text_check(text, **rules())
        assert (result.name, result.outcome) == ("text", FAIL)


def test_missing_optional_text_passes() -> None:
    [result] = text_check(None, **rules(required=False, min_length=20))
    assert result.outcome == PASS


def test_missing_optional_text_with_disclosure_rule_warns() -> None:
    [result] = text_check("", **rules(required=False, disclosure_required=True))
    assert (result.name, result.outcome) == ("disclosure", WARN)


def test_length_is_counted_in_characters_of_the_stripped_text() -> None:
    text = "  " + "é" * 10 + "  "  # ten characters, twenty UTF-8 bytes
    assert by_name(text_check(text, **rules(min_length=10, max_length=10)))["text"].outcome == PASS
    decomposed = "e\u0301" * 10  # NFD: still ten characters
    assert by_name(text_check(decomposed, **rules(max_length=10)))["text"].outcome == PASS


def test_too_short_and_too_long() -> None:
    short = by_name(text_check("tiny", **rules(min_length=10)))["text"]
    assert short.outcome == FAIL
    assert short.detail == "text is too short (4 characters; at least 10 required)"
    long = by_name(text_check("x" * 30, **rules(max_length=20)))["text"]
    assert long.outcome == FAIL and "too long (30 characters; at most 20" in long.detail


def test_only_applicable_rules_produce_results() -> None:
    assert [r.name for r in text_check(REVIEW, **rules())] == ["text"]
    results = text_check(REVIEW, **rules(prohibited=["x"], disclosure_required=True))
    names = [r.name for r in results]
    assert names == ["text", "prohibited", "disclosure"]


# --- prohibited phrases ----------------------------------------------------------------------


def test_prohibited_phrase_found_case_and_accent_insensitively() -> None:
    result = by_name(text_check("Better than PEPSÍ, really", **rules(prohibited=["Pepsi"])))
    prohibited = result["prohibited"]
    assert prohibited.outcome == FAIL
    assert prohibited.detail == 'text contains prohibited phrase "Pepsi"'
    assert prohibited.data["phrases"] == ["Pepsi"]


def test_prohibited_phrases_match_whole_words_only() -> None:
    assert find_prohibited("a free-ish deal, freedom!", ["free"]) == ["free"]
    assert find_prohibited("freedom and freebies", ["free"]) == []
    assert find_prohibited("I love Coca-Cola!", ["coca cola"]) == ["coca cola"]
    assert find_prohibited("Diet   cola,  best", ["diet cola"]) == ["diet cola"]
    assert find_prohibited("discolanguage", ["cola"]) == []


def test_prohibited_phrase_as_a_hashtag_and_with_hidden_characters() -> None:
    assert find_prohibited("so good #pepsi", ["pepsi"]) == ["pepsi"]
    assert find_prohibited("so good pep\u200bsi", ["pepsi"]) == ["pepsi"]


def test_several_prohibited_phrases_are_all_named() -> None:
    result = by_name(text_check("pepsi beats coke", **rules(prohibited=["Coke", "Pepsi", "fanta"])))
    assert result["prohibited"].data["phrases"] == ["Coke", "Pepsi"]
    assert result["prohibited"].detail == 'text contains prohibited phrases "Coke", "Pepsi"'


def test_no_prohibited_phrase_passes_and_blank_phrases_are_ignored() -> None:
    result = by_name(text_check(REVIEW, **rules(prohibited=["pepsi", "  ", "!!"])))
    assert result["prohibited"].outcome == PASS


# --- disclosure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "disclosed"),
    [
        ("great drink #ad", True),
        ("#Ad great drink", True),
        ("great drink #AD!", True),
        ("great drink (#sponsored)", True),
        ("great drink #Sponsored.", True),
        ("great drink ＃ａｄ", True),
        ("great drink #adventure", False),
        ("great drink #ad_campaign", False),
        ("great drink #sponsoredcontent", False),
        ("great drink x#ad", False),
        ("great drink ad", False),
        ("great drink sponsored", False),
    ],
)
def test_disclosure_hashtag(text: str, disclosed: bool) -> None:
    assert has_disclosure(text) is disclosed
    result = by_name(text_check(text, **rules(disclosure_required=True)))["disclosure"]
    assert result.outcome == (PASS if disclosed else FAIL)


# --- shingles, jaccard, near-copy ------------------------------------------------------------


def test_shingles_are_word_trigrams_of_the_normalised_text() -> None:
    assert len(shingles("one two three four five")) == 3
    assert shingles("One, TWO three!") == shingles("one two three")
    assert len(shingles("two words")) == 1
    assert shingles("") == frozenset()
    assert all(0 <= value < 2**64 for value in shingles(REVIEW))


def test_shingle_hashes_are_stable_across_processes() -> None:
    # Python's own hash() is salted per process; ours must not be.
    code = (
        "from marketplace.proofs.checks.text import shingles;"
        "print(sorted(shingles('stable across processes please')))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str(sorted(shingles("stable across processes please")))


def test_jaccard() -> None:
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert jaccard(set(), set()) == 0.0
    assert jaccard({1}, {1}) == 1.0


def test_near_copy_names_the_most_similar_earlier_submission() -> None:
    lightly_edited = REVIEW.replace("yesterday", "today").upper()
    candidates = [
        ("sub_unrelated", shingles("a completely different text about shoes and running")),
        ("sub_original", shingles(REVIEW)),
        ("sub_partial", shingles(REVIEW[:60])),
    ]
    result = near_copy_check(lightly_edited, candidates)
    assert (result.name, result.outcome) == ("near_copy", FAIL)
    assert result.detail.startswith("near-copy of sub_original (similarity 0.")
    assert result.data["matched_submission_id"] == "sub_original"
    assert result.data["similarity"] >= 0.8


def test_near_copy_accepts_signed_bigint_lists() -> None:
    signed = [value - 2**64 if value >= 2**63 else value for value in shingles(REVIEW)]
    assert near_copy_check(REVIEW, [("sub_db", signed)]).outcome == FAIL


def test_original_text_passes() -> None:
    result = near_copy_check(REVIEW, [("sub_other", shingles("nothing in common here at all"))])
    assert result.outcome == PASS and result.data["matched_submission_id"] is None
    assert near_copy_check(REVIEW, []).outcome == PASS
    assert near_copy_check("", [("sub_x", shingles(REVIEW))]).outcome == PASS


def test_threshold_is_respected() -> None:
    edited = REVIEW.replace("refreshing", "reviving").replace("crisp", "sharp")
    similarity = jaccard(shingles(edited), shingles(REVIEW))
    assert 0.5 < similarity < 0.8
    assert near_copy_check(edited, [("sub_a", shingles(REVIEW))]).outcome == PASS
    assert near_copy_check(edited, [("sub_a", shingles(REVIEW))], threshold=0.5).outcome == FAIL


def test_identical_short_text_is_only_a_warning() -> None:
    result = near_copy_check("Love it!", [("sub_short", shingles("love it"))])
    assert result.outcome == WARN
    assert result.detail == "near-copy of sub_short (similarity 1.00)"


def test_minhash_estimates_similarity() -> None:
    a = shingles(REVIEW)
    b = shingles(REVIEW.replace("yesterday", "today"))
    sig_a, sig_b = minhash_signature(a, n=64), minhash_signature(b, n=64)
    assert len(sig_a) == 64 and all(0 <= v < 2**61 for v in sig_a)
    assert sig_a == minhash_signature(a, n=64)
    assert abs(minhash_similarity(sig_a, sig_b) - jaccard(a, b)) < 0.25
    unrelated = minhash_signature(shingles("other words entirely here"), 64)
    assert minhash_similarity(sig_a, unrelated) < 0.2
    assert minhash_signature(frozenset()) == []
