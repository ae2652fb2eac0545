"""Timestamp check: capture time against claim, submission and the brief window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from marketplace.proofs.checks import FAIL, PASS, WARN, CheckResult
from marketplace.proofs.checks.timestamp import timestamp_check

WINDOW_START = datetime(2026, 5, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC)
CLAIMED = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
SUBMITTED = datetime(2026, 5, 10, 13, 0, tzinfo=UTC)


def check(captured_at=None, exif_at=None, **overrides):
    arguments = {
        "captured_at": captured_at,
        "exif_at": exif_at,
        "claimed_at": CLAIMED,
        "submitted_at": SUBMITTED,
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
    }
    arguments.update(overrides)
    return timestamp_check(**arguments)


def test_capture_between_claim_and_submission_passes() -> None:
    result = check(captured_at=CLAIMED + timedelta(minutes=20))
    assert (result.name, result.outcome) == ("timestamp", PASS)
    assert result.data["source"] == "captured_at"
    assert result.data["capture_time"] == "2026-05-10T12:20:00Z"


def test_captured_at_wins_over_exif() -> None:
    result = check(
        captured_at=CLAIMED + timedelta(minutes=5), exif_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert result.outcome == PASS and result.data["source"] == "captured_at"


def test_exif_used_when_no_captured_at() -> None:
    result = check(exif_at=CLAIMED + timedelta(minutes=5))
    assert result.outcome == PASS and result.data["source"] == "exif"


def test_no_capture_time_warns_for_a_reviewer() -> None:
    result = check()
    assert result.outcome == WARN
    assert result.detail == "no capture time; a reviewer should look"


def test_future_capture_fails_with_rfc3339_times() -> None:
    result = check(captured_at=SUBMITTED + timedelta(hours=3))
    assert result.outcome == FAIL
    assert result.data["reasons"] == ["after_submission"]
    assert "2026-05-10T16:00:00Z" in result.detail
    assert "after the submission at 2026-05-10T13:00:00Z" in result.detail


def test_capture_before_the_claim_fails() -> None:
    result = check(captured_at=CLAIMED - timedelta(days=1))
    assert result.outcome == FAIL
    assert result.data["reasons"] == ["before_claim"]
    assert "before the task was claimed at 2026-05-10T12:00:00Z" in result.detail


def test_capture_outside_the_window_names_the_window() -> None:
    early = check(
        captured_at=datetime(2026, 4, 30, 23, 0, tzinfo=UTC),
        claimed_at=datetime(2026, 4, 30, 22, 0, tzinfo=UTC),
    )
    assert early.outcome == FAIL and early.data["reasons"] == ["before_window"]
    assert "before the brief window opened at 2026-05-01T00:00:00Z" in early.detail

    late = check(
        captured_at=datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
        claimed_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
        submitted_at=datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
    )
    assert late.outcome == FAIL and late.data["reasons"] == ["after_window"]
    assert "after the brief window closed at 2026-05-31T23:59:59Z" in late.detail


def test_every_violation_is_reported() -> None:
    result = check(captured_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert result.data["reasons"] == ["before_claim", "before_window"]
    assert "; " in result.detail


@pytest.mark.parametrize(
    ("capture", "outcome"),
    [
        (SUBMITTED + timedelta(seconds=119), PASS),
        (SUBMITTED + timedelta(seconds=121), FAIL),
        (CLAIMED - timedelta(seconds=119), PASS),
        (CLAIMED - timedelta(seconds=121), FAIL),
    ],
    ids=["late-within-skew", "late-beyond-skew", "early-within-skew", "early-beyond-skew"],
)
def test_device_clock_skew_is_tolerated(capture: datetime, outcome: str) -> None:
    assert check(captured_at=capture).outcome == outcome


def test_custom_skew() -> None:
    capture = SUBMITTED + timedelta(minutes=5)
    assert check(captured_at=capture).outcome == FAIL
    assert check(captured_at=capture, skew=timedelta(minutes=10)).outcome == PASS


def test_naive_inputs_are_utc_and_offsets_are_converted() -> None:
    naive = check(
        captured_at=datetime(2026, 5, 10, 12, 30),
        claimed_at=CLAIMED.replace(tzinfo=None),
        submitted_at=SUBMITTED.replace(tzinfo=None),
    )
    assert naive.outcome == PASS and naive.data["capture_time"] == "2026-05-10T12:30:00Z"

    # 14:30 at +02:00 is 12:30 UTC: inside; 14:30 UTC would be after the submission.
    offset = check(captured_at=datetime(2026, 5, 10, 14, 30, tzinfo=timezone(timedelta(hours=2))))
    assert offset.outcome == PASS and offset.data["capture_time"] == "2026-05-10T12:30:00Z"


def test_result_serialises() -> None:
    payload = check(captured_at=CLAIMED).to_dict()
    assert payload["name"] == "timestamp" and payload["outcome"] == PASS
    assert payload["data"]["window_end"] == "2026-05-31T23:59:59Z"


def test_check_result_contract() -> None:
    result = CheckResult("timestamp", PASS, "ok", {"nested": {"a": 1}})
    assert hash(result) == hash(CheckResult("timestamp", PASS, "ok", {"other": 2}))
    payload = result.to_dict()
    payload["data"]["nested"]["a"] = 2
    assert result.data["nested"]["a"] == 1  # to_dict hands out a copy
    assert CheckResult("x", WARN, "d").data == {}
    with pytest.raises(ValueError):
        CheckResult("x", "maybe", "d")
