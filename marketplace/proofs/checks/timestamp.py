"""Timestamp check: captured between claim and submission, inside the brief window?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketplace.timefmt import rfc3339

from . import FAIL, PASS, WARN, CheckResult

DEFAULT_SKEW = timedelta(minutes=2)


def _utc(value: datetime) -> datetime:
    # Naive input is UTC by convention (SQLite and EXIF hand back naive times).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp_check(
    *,
    captured_at: datetime | None,
    exif_at: datetime | None,
    claimed_at: datetime,
    submitted_at: datetime,
    window_start: datetime,
    window_end: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> CheckResult:
    """Judge the capture time of a proof against the claim, the submission and the brief window.

    ``captured_at`` (a capture time the client reported) wins over ``exif_at``; with
    neither, a reviewer has to look (warn). The capture time comes from the worker's
    device, whose clock drifts, so every bound is widened by ``skew``; the server times
    (claim, submission, window) are trusted as they are. All violations are reported,
    not just the first.
    """
    if captured_at is not None:
        source, capture = "captured_at", _utc(captured_at)
    elif exif_at is not None:
        source, capture = "exif", _utc(exif_at)
    else:
        return CheckResult(
            name="timestamp",
            outcome=WARN,
            detail="no capture time; a reviewer should look",
            data={"source": None},
        )

    claimed, submitted = _utc(claimed_at), _utc(submitted_at)
    start, end = _utc(window_start), _utc(window_end)
    shown = rfc3339(capture)

    problems: list[tuple[str, str]] = []
    if capture > submitted + skew:
        problems.append((
            "after_submission",
            f"capture time {shown} is after the submission at {rfc3339(submitted)} "
            "(in the future)",
        ))
    if capture < claimed - skew:
        problems.append((
            "before_claim",
            f"capture time {shown} is before the task was claimed at {rfc3339(claimed)}",
        ))
    if capture < start - skew:
        problems.append((
            "before_window",
            f"capture time {shown} is before the brief window opened at {rfc3339(start)}",
        ))
    if capture > end + skew:
        problems.append((
            "after_window",
            f"capture time {shown} is after the brief window closed at {rfc3339(end)}",
        ))

    data = {
        "source": source,
        "capture_time": shown,
        "claimed_at": rfc3339(claimed),
        "submitted_at": rfc3339(submitted),
        "window_start": rfc3339(start),
        "window_end": rfc3339(end),
        "skew_seconds": int(skew.total_seconds()),
    }
    if problems:
        return CheckResult(
            name="timestamp",
            outcome=FAIL,
            detail="; ".join(detail for _, detail in problems),
            data={**data, "reasons": [reason for reason, _ in problems]},
        )
    return CheckResult(
        name="timestamp",
        outcome=PASS,
        detail=(
            f"captured at {shown}, between the claim and the submission, "
            "inside the brief window"
        ),
        data={**data, "reasons": []},
    )


__all__ = ["DEFAULT_SKEW", "timestamp_check"]
