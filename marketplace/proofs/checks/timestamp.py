"""Timestamp check: captured between claim and submission, inside the brief window?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketplace.db.clock import rfc3339

from . import FAIL, PASS, WARN, CheckResult

DEFAULT_SKEW = timedelta(minutes=2)
# Where on Earth a clock with no zone may be: UTC-12 to UTC+14.
EARLIEST_OFFSET, LATEST_OFFSET = timedelta(hours=-12), timedelta(hours=14)


def _utc(value: datetime) -> datetime:
    # Naive input is UTC by convention (SQLite hands back naive times).
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
    elif exif_at is not None and exif_at.tzinfo is None:
        return _zoneless_exif_check(exif_at, _utc(claimed_at), _utc(submitted_at), _utc(window_start),
                                    _utc(window_end), skew)
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


def _zoneless_exif_check(wall: datetime, claimed: datetime, submitted: datetime, start: datetime,
                         end: datetime, skew: timedelta) -> CheckResult:
    """An EXIF time with no zone is some instant from wall-14h to wall+12h UTC. It fails only
    when every one of those instants breaks a rule; else it may or may not, and a person looks."""
    earliest, latest = (wall - LATEST_OFFSET).replace(tzinfo=UTC), (wall - EARLIEST_OFFSET).replace(tzinfo=UTC)
    shown = wall.isoformat()
    data = {"source": "exif", "capture_time": shown, "zone_known": False, "earliest": rfc3339(earliest),
            "latest": rfc3339(latest), "claimed_at": rfc3339(claimed), "submitted_at": rfc3339(submitted),
            "window_start": rfc3339(start), "window_end": rfc3339(end), "skew_seconds": int(skew.total_seconds())}
    problems: list[tuple[str, str]] = []
    if earliest > submitted + skew:
        problems.append(("after_submission", f"capture time {shown} (any zone) is after the submission "
                                             f"at {rfc3339(submitted)} (in the future)"))
    if latest < claimed - skew:
        problems.append(("before_claim", f"capture time {shown} (any zone) is before the task was claimed "
                                         f"at {rfc3339(claimed)}"))
    if latest < start - skew:
        problems.append(("before_window", f"capture time {shown} (any zone) is before the brief window "
                                          f"opened at {rfc3339(start)}"))
    if earliest > end + skew:
        problems.append(("after_window", f"capture time {shown} (any zone) is after the brief window "
                                         f"closed at {rfc3339(end)}"))
    if problems:
        return CheckResult("timestamp", FAIL, "; ".join(detail for _, detail in problems),
                           {**data, "reasons": [reason for reason, _ in problems]})
    return CheckResult("timestamp", WARN, f"the image's time {shown} gives no time zone, so whether it lies "
                       "between the claim and the submission cannot be told; a reviewer should look",
                       {**data, "reasons": ["zone_unknown"]})


__all__ = ["DEFAULT_SKEW", "timestamp_check"]
