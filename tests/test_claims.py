"""Finding and claiming tasks: the listing, atomic claims under races, expiry, release, rate limits."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from tests.factories import (
    auth,
    create_brief,
    fund_brief,
    hours_from_now,
    live_brief,
    row_locked,
    sign_up_brand,
    sign_up_worker,
)
from tests.factories.jobs import run_job


def group(kind: str = "caption", quantity: int = 30, price: int = 60, **over) -> dict:
    return {"kind": kind, "quantity": quantity, "unit_price_cents": price, "instructions": f"Do the {kind}",
            "proof": {"text": {"min_length": 20, "max_length": 300}}, **over}


def live_groups(client, standin, groups: list[dict], key: str | None = None, **over) -> tuple[dict, str]:
    if key is None:
        _, key = sign_up_brand(client)
    return live_brief(client, key, standin, task_groups=groups, **over), key


def many_workers(app, n: int) -> list[str]:
    """n worker tokens, signed up through the API in parallel (password hashing is the slow part)."""

    def one(_):
        with app.test_client() as c:
            return sign_up_worker(c)[1]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def claim_url(group_id: str) -> str:
    return f"/v1/task-groups/{group_id}/claim"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.content_type == "application/problem+json"
    return response.get_json()


def scalar(db_session, sql: str, **params):
    db_session.rollback()  # read what other connections committed since
    return db_session.execute(sa.text(sql), params).scalar_one()


def wait_for_connection_slots(db_session, needed: int, timeout: float = 240.0) -> None:
    """A race of 50 claimers needs 50 PostgreSQL connections at once; on a server shared with other
    test runs, wait until that many are free rather than fail on 'too many clients'."""
    deadline = time.monotonic() + timeout
    while True:
        free = scalar(db_session, "SELECT current_setting('max_connections')::int - count(*) "
                                  "FROM pg_stat_activity WHERE backend_type = 'client backend'")
        if free >= needed:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"PostgreSQL has {free} free connections, this race needs {needed}: raise max_connections")
        time.sleep(1)


def release_pooled_connections(app) -> None:
    """Give back the race's idle pooled connections, for the tests (and test runs) that share the server."""
    from marketplace.extensions import db

    with app.app_context():
        db.engine.dispose()


def race(app, requests: list[tuple[str, str]]) -> list[tuple[int, dict]]:
    """POST each (path, token) from its own thread and client at once; (status, body) in order."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def post(i: int, path: str, token: str):
        with app.test_client() as c:
            barrier.wait(timeout=60)
            response = c.post(path, headers=auth(token))
            results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=post, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def assert_thirty_of_fifty_won(results, db_session, group_id: str) -> None:
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 30, 409: 20}, statuses
    won = [body["task"]["id"] for status, body in results if status == 201]
    assert len(set(won)) == 30
    held = db_session.execute(sa.text(
        "SELECT task_id FROM claims WHERE group_id = :g AND status = 'active'"), {"g": group_id}).scalars().all()
    assert sorted(held) == sorted(won)  # no claim lost, none extra
    assert scalar(db_session, "SELECT count(*) FROM tasks WHERE group_id = :g AND status = 'open'", g=group_id) == 0
    assert scalar(db_session, "SELECT count(DISTINCT worker_id) FROM claims WHERE group_id = :g", g=group_id) == 30


@pytest.mark.slow
def test_claim_never_hands_one_task_to_two_workers(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=30)])
    group_id = brief["task_groups"][0]["id"]
    tokens = many_workers(app, 50)
    wait_for_connection_slots(db_session, 55)
    try:
        results = race(app, [(claim_url(group_id), token) for token in tokens])
    finally:
        release_pooled_connections(app)
    assert_thirty_of_fifty_won(results, db_session, group_id)


PROCESSES, THREADS_EACH = 10, 5


def _claim_from_own_process(tokens: list[str], group_id: str, barrier, results) -> None:
    """Runs in a spawned process: its own app and engine; each thread its own PostgreSQL connection.
    Every claimer of every process waits on one cross-process barrier, then all claim at once."""
    from marketplace import create_app

    app = create_app({"TESTING": True})
    app.test_client().get("/healthz")  # warm up before the start line

    def claim_one(token: str) -> None:
        with app.test_client() as client:
            barrier.wait(timeout=300)
            # A 503 ("the database is unavailable just now; retry shortly") is an answer a client retries,
            # as ours do: when the other half of the suite holds PostgreSQL's connections, fifty new ones at
            # once can be refused. A retried claim is still one claim: the race is what is under test.
            for _ in range(5):
                response = client.post(claim_url(group_id), headers=auth(token))
                if response.status_code != 503:
                    break
                time.sleep(0.5)
            results.put((response.status_code, response.get_json()))

    threads = [threading.Thread(target=claim_one, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.slow
def test_claim_never_hands_one_task_to_two_worker_processes(app, client, standin, db_session):
    """The same race from 10 separate processes of 5 claimers each (spawned, not forked)."""
    brief, _ = live_groups(client, standin, [group(quantity=30)])
    group_id = brief["task_groups"][0]["id"]
    tokens = many_workers(app, PROCESSES * THREADS_EACH)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES * THREADS_EACH)
    queue = ctx.Queue()
    processes = [
        ctx.Process(target=_claim_from_own_process,
                    args=(tokens[i * THREADS_EACH:(i + 1) * THREADS_EACH], group_id, barrier, queue))
        for i in range(PROCESSES)
    ]
    wait_for_connection_slots(db_session, PROCESSES * THREADS_EACH + 5)
    for p in processes:
        p.start()
    results = [queue.get(timeout=400) for _ in tokens]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert_thirty_of_fifty_won(results, db_session, group_id)


@pytest.mark.slow
def test_max_per_worker_holds_under_a_race(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=30, max_per_worker=3)])
    group_id = brief["task_groups"][0]["id"]
    _, token = sign_up_worker(client)
    wait_for_connection_slots(db_session, 25)
    try:
        results = race(app, [(claim_url(group_id), token)] * 20)
    finally:
        release_pooled_connections(app)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 3, 409: 17}, statuses
    assert len({body["task"]["id"] for status, body in results if status == 201}) == 3
    assert scalar(db_session, "SELECT count(*) FROM claims WHERE group_id = :g", g=group_id) == 3
    assert any("limit per worker" in body["detail"] for status, body in results if status == 409)


def test_claim_returns_the_task_the_countdown_and_a_tracked_link(app, client, standin):
    brief, _ = live_groups(client, standin, [group(quantity=2, max_per_worker=1)], title="Spring captions")
    _, token = sign_up_worker(client)
    before = datetime.now(UTC)
    response = client.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "active" and body["task"]["id"].startswith("task_")
    assert body["task"]["unit_price_cents"] == 60 and body["task"]["currency"] == "usd"
    assert body["task"]["proof"]["text"]["min_length"] == 20
    assert body["brief"]["title"] == "Spring captions" and body["brief"]["disclosure_required"] is True
    assert body["tracked_link"] == f"http://localhost/t/{body['tracked_code']}"
    expires = datetime.fromisoformat(body["claim_expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - before <= timedelta(minutes=60, seconds=5)
    assert 3500 < body["expires_in_seconds"] <= 3600
    # max_per_worker 1: the second is refused though a task is left
    assert "limit per worker" in assert_problem(
        client.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token)), 409)["detail"]


def test_a_claim_past_its_expiry_no_longer_counts_against_the_limit(app, client, standin, db_session):
    """The expiry job runs each minute; once a claim is past its expiry and its upload grace, it
    must not keep the worker out of a group (nor out of the listing) until the job ends it."""
    brief, _ = live_groups(client, standin, [group(quantity=3, max_per_worker=1)])
    group_id = brief["task_groups"][0]["id"]
    _, token = sign_up_worker(client)
    assert client.post(claim_url(group_id), headers=auth(token)).status_code == 201
    assert client.post(claim_url(group_id), headers=auth(token)).status_code == 409
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '1 second'"))
    db_session.commit()
    # Within the upload grace it may still take proof (begun in time), so it still counts.
    assert client.post(claim_url(group_id), headers=auth(token)).status_code == 409
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '3 minutes'"))
    db_session.commit()
    assert group_id in [g["id"] for g in client.get("/v1/tasks", headers=auth(token)).get_json()["data"]]
    assert client.post(claim_url(group_id), headers=auth(token)).status_code == 201


def test_claim_ttl_comes_from_config(app, client, standin):
    brief, _ = live_groups(client, standin, [group(quantity=2)])
    _, token = sign_up_worker(client)
    saved = app.config["CLAIM_TTL_MINUTES"]
    app.config["CLAIM_TTL_MINUTES"] = 5
    try:
        body = client.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token)).get_json()
    finally:
        app.config["CLAIM_TTL_MINUTES"] = saved
    assert 290 <= body["expires_in_seconds"] <= 300


def run_expiry_job(app):
    return run_job(app, "workers.claims.expire_claims")


def test_an_expired_claim_reopens_its_task_for_another_worker(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=1)])
    group_id = brief["task_groups"][0]["id"]
    _, first = sign_up_worker(client)
    _, second = sign_up_worker(client)
    held = client.post(claim_url(group_id), headers=auth(first)).get_json()
    assert_problem(client.post(claim_url(group_id), headers=auth(second)), 409)
    assert run_expiry_job(app) == 0  # not due yet: nothing changes
    assert scalar(db_session, "SELECT status FROM claims WHERE id = :c", c=held["claim_id"]) == "active"

    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '1 second' WHERE id = :c"),
                       {"c": held["claim_id"]})
    db_session.commit()
    # Past its expiry the claim is no longer offered to its worker, even before the job runs;
    # the job leaves it for the upload grace (proof begun in time may still be arriving).
    assert client.get("/v1/me/claims", headers=auth(first)).get_json()["data"] == []
    assert run_expiry_job(app) == 0
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '3 minutes' WHERE id = :c"),
                       {"c": held["claim_id"]})
    db_session.commit()
    assert run_expiry_job(app) == 1
    assert scalar(db_session, "SELECT status FROM claims WHERE id = :c", c=held["claim_id"]) == "expired"
    assert scalar(db_session, "SELECT ended_at IS NOT NULL FROM claims WHERE id = :c", c=held["claim_id"])
    task = db_session.execute(sa.text("SELECT status, worker_id FROM tasks WHERE id = :t"),
                              {"t": held["task"]["id"]}).one()
    assert tuple(task) == ("open", None)
    assert run_expiry_job(app) == 0  # safe to run again

    assert_problem(client.post(f"/v1/tasks/{held['task']['id']}/release", headers=auth(first)), 404)
    again = client.post(claim_url(group_id), headers=auth(second))
    assert again.status_code == 201
    assert again.get_json()["task"]["id"] == held["task"]["id"]
    assert again.get_json()["tracked_code"] != held["tracked_code"]


def test_expiry_skips_a_claim_whose_proof_is_being_submitted(app, client, standin, db_session):
    """A submission holds the claim's row lock while it checks the expiry; the job must not wait
    on it nor end it under the submission's feet: it skips it and leaves it for the next run."""
    brief, _ = live_groups(client, standin, [group(quantity=2)])
    group_id = brief["task_groups"][0]["id"]
    _, token = sign_up_worker(client)
    locked = client.post(claim_url(group_id), headers=auth(token)).get_json()
    free = client.post(claim_url(group_id), headers=auth(token)).get_json()
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '3 minutes'"))
    db_session.commit()
    with app.app_context():
        from marketplace.tasks import service

        with row_locked(app, "claims", locked["claim_id"]):  # its proof being submitted
            assert run_expiry_job(app) == 1
        statuses = dict(db_session.execute(sa.text("SELECT id, status FROM claims")).all())
        assert statuses == {locked["claim_id"]: "active", free["claim_id"]: "expired"}
        assert service.expire_due_claims() == 1
    assert scalar(db_session, "SELECT count(*) FROM claims WHERE status = 'expired'") == 2


def test_release_gives_the_task_back_once_and_only_to_its_holder(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=1)])
    group_id = brief["task_groups"][0]["id"]
    _, holder = sign_up_worker(client)
    _, other = sign_up_worker(client)
    held = client.post(claim_url(group_id), headers=auth(holder)).get_json()
    task_id = held["task"]["id"]
    assert_problem(client.post(f"/v1/tasks/{task_id}/release", headers=auth(other)), 404)
    assert_problem(client.post("/v1/tasks/task_nope/release", headers=auth(holder)), 404)
    released = client.post(f"/v1/tasks/{task_id}/release", headers=auth(holder))
    assert released.status_code == 200 and released.get_json()["status"] == "released"
    assert scalar(db_session, "SELECT status FROM tasks WHERE id = :t", t=task_id) == "open"
    assert_problem(client.post(f"/v1/tasks/{task_id}/release", headers=auth(holder)), 404)
    assert client.post(claim_url(group_id), headers=auth(other)).status_code == 201


def test_release_after_proof_is_in_is_409(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=1)])
    _, token = sign_up_worker(client)
    held = client.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token)).get_json()
    # What a submission does to the claim (the submissions endpoint belongs to the proofs domain).
    db_session.execute(sa.text("UPDATE claims SET status = 'submitted' WHERE id = :c"), {"c": held["claim_id"]})
    db_session.commit()
    assert_problem(client.post(f"/v1/tasks/{held['task']['id']}/release", headers=auth(token)), 409)
    assert scalar(db_session, "SELECT status FROM claims WHERE id = :c", c=held["claim_id"]) == "submitted"


def test_claims_are_refused_unless_the_brief_is_live_and_inside_its_window(app, client, standin, db_session):
    _, key = sign_up_brand(client)
    _, token = sign_up_worker(client)
    groups = [group(quantity=2)]

    paused, _ = live_groups(client, standin, groups, key=key)
    assert client.post(f"/v1/briefs/{paused['id']}/pause", headers=auth(key)).status_code == 200
    funded = create_brief(client, key, task_groups=groups)
    fund_brief(client, key, funded["id"], standin)
    cancelled, _ = live_groups(client, standin, groups, key=key)
    assert client.post(f"/v1/briefs/{cancelled['id']}/cancel", headers=auth(key)).status_code == 200
    not_started, _ = live_groups(client, standin, groups, key=key, starts_at=hours_from_now(24),
                                 ends_at=hours_from_now(48))
    ended, _ = live_groups(client, standin, groups, key=key)
    db_session.execute(sa.text("UPDATE briefs SET starts_at = now() - interval '2 days', "
                               "ends_at = now() - interval '1 day' WHERE id = :b"), {"b": ended["id"]})
    group_paused, _ = live_groups(client, standin, groups, key=key)
    db_session.execute(sa.text("UPDATE task_groups SET paused_reason = 'fraud review' WHERE brief_id = :b"),
                       {"b": group_paused["id"]})
    sold_out, _ = live_groups(client, standin, [group(quantity=1)], key=key)
    db_session.commit()
    _, rival = sign_up_worker(client)
    assert client.post(claim_url(sold_out["task_groups"][0]["id"]), headers=auth(rival)).status_code == 201

    for brief, words in [(paused, "paused"), (funded, "funded"), (cancelled, "cancelled"),
                         (not_started, "window"), (ended, "window"), (group_paused, "fraud review"),
                         (sold_out, "No open task")]:
        body = assert_problem(client.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token)), 409)
        assert words in body["detail"], (words, body)
    assert_problem(client.post(claim_url("grp_unknown"), headers=auth(token)), 404)
    assert scalar(db_session, "SELECT count(*) FROM claims") == 1  # the rival's, nothing else
    listed = client.get("/v1/tasks", headers=auth(token)).get_json()["data"]
    assert listed == []  # none of those groups may be claimed from


def test_only_workers_find_claim_and_release(app, client, standin):
    brief, key = live_groups(client, standin, [group(quantity=1)])
    group_id = brief["task_groups"][0]["id"]
    for method, path in [("post", claim_url(group_id)), ("post", "/v1/tasks/task_x/release"),
                         ("get", "/v1/tasks"), ("get", "/v1/me/claims")]:
        assert_problem(getattr(client, method)(path), 401)
        assert_problem(getattr(client, method)(path, headers=auth("mt_not-a-token")), 401)
        assert_problem(getattr(client, method)(path, headers=auth(key)), 403)


def test_claims_past_the_rate_limit_get_429_with_retry_after(app, client, standin, db_session):
    brief, _ = live_groups(client, standin, [group(quantity=10)])
    group_id = brief["task_groups"][0]["id"]
    _, token = sign_up_worker(client)
    _, other = sign_up_worker(client)
    saved = app.config["CLAIM_RATE_LIMIT"]
    app.config["CLAIM_RATE_LIMIT"] = "2/minute"
    try:
        assert client.post(claim_url(group_id), headers=auth(token)).status_code == 201
        assert client.post(claim_url(group_id), headers=auth(token)).status_code == 201
        limited = client.post(claim_url(group_id), headers=auth(token))
        body = assert_problem(limited, 429)
        assert 1 <= int(limited.headers["Retry-After"]) <= 60 and "2 per 60 seconds" in body["detail"]
        assert_problem(client.post(claim_url(group_id), headers=auth(token)), 429)
        # per worker: another worker is not held back
        assert client.post(claim_url(group_id), headers=auth(other)).status_code == 201
    finally:
        app.config["CLAIM_RATE_LIMIT"] = saved
    assert scalar(db_session, "SELECT count(*) FROM claims") == 3


def test_without_redis_the_limit_is_kept_in_process(app, client, standin):
    from marketplace import create_app

    brief, _ = live_groups(client, standin, [group(quantity=10)])
    _, token = sign_up_worker(client)
    embedded = create_app({"TESTING": True, "REDIS_URL": None, "CLAIM_RATE_LIMIT": "1/10s"})
    try:
        c = embedded.test_client()
        assert c.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token)).status_code == 201
        limited = c.post(claim_url(brief["task_groups"][0]["id"]), headers=auth(token))
        assert_problem(limited, 429)
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
    finally:
        with embedded.app_context():
            from marketplace.extensions import db

            db.engine.dispose()


def test_a_redis_outage_keeps_the_limit_per_process_and_readyz_says_so(app, client, standin, caplog):
    """35 claims against 30/minute while Redis is down: the 31st is refused, not let through."""
    from marketplace import create_app

    brief, _ = live_groups(client, standin, [group(quantity=40, max_per_worker=40)])
    group_id = brief["task_groups"][0]["id"]
    _, token = sign_up_worker(client)
    broken = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0", "CLAIM_RATE_LIMIT": "30/minute"})
    caplog.set_level(logging.WARNING, logger="marketplace.http.ratelimit")
    try:
        c = broken.test_client()
        statuses = Counter(c.post(claim_url(group_id), headers=auth(token)).status_code for _ in range(35))
        assert statuses == {201: 30, 429: 5}
        ready = c.get("/readyz")
        body = assert_problem(ready, 503)
        assert body["checks"]["rate_limits"] == "per-process fallback: Redis unreachable"
        assert "rate limits are kept per process" in body["detail"]
    finally:
        with broken.app_context():
            from marketplace.extensions import db

            db.engine.dispose()
    assert any("kept per process" in r.getMessage() for r in caplog.records)


def test_rates_are_read_from_config_strings():
    from marketplace.http.ratelimit import Rate, parse_rate

    assert parse_rate("30/minute") == Rate(30, 60)
    assert parse_rate("20/min") == Rate(20, 60)
    assert parse_rate("5/10s") == Rate(5, 10)
    assert parse_rate("1000/hours") == Rate(1000, 3600)
    assert parse_rate("off") is None and parse_rate("") is None
    for bad in ("thirty/minute", "30/fortnight", "30", "/minute", "0/minute", "5/0s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_settings_the_code_cannot_honour_stop_the_app_at_start_up():
    from marketplace import create_app

    with pytest.raises(ValueError, match="DUPLICATE_HAMMING_THRESHOLD"):
        create_app({"DUPLICATE_HAMMING_THRESHOLD": 8})
    with pytest.raises(ValueError, match="0/minute"):
        create_app({"CLAIM_RATE_LIMIT": "0/minute"})


def test_submission_limit_is_per_worker_and_separate_from_claims(app):
    from marketplace.errors import RateLimited
    from marketplace.http import ratelimit

    with app.test_request_context():
        saved = app.config["SUBMISSION_RATE_LIMIT"], app.config["CLAIM_RATE_LIMIT"]
        app.config.update(SUBMISSION_RATE_LIMIT="2/minute", CLAIM_RATE_LIMIT="1/minute")
        try:
            ratelimit.check_submission("wrk_a")
            ratelimit.check_submission("wrk_a")
            with pytest.raises(RateLimited) as refused:
                ratelimit.check_submission("wrk_a")
            assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
            ratelimit.check_submission("wrk_b")
            ratelimit.check_claim("wrk_a")  # claims count on their own
        finally:
            app.config.update(SUBMISSION_RATE_LIMIT=saved[0], CLAIM_RATE_LIMIT=saved[1])


def test_listing_shows_claimable_groups_with_counts_filters_and_pages(app, client, standin, db_session):
    _, key = sign_up_brand(client)
    older, _ = live_groups(client, standin, [group("caption", 3, max_per_worker=2), group("clip", 2, price=100)],
                           key=key, title="Older", key_message="lighter shoe", hook="Stop", offer="20% off",
                           prohibitions=["no competitor names"], landing_url="https://shop.example.com/a")
    newer, _ = live_groups(client, standin, [group("review", 2, price=150), group("caption", 1)], key=key,
                           title="Newer")
    paused, _ = live_groups(client, standin, [group("caption", 5)], key=key)
    client.post(f"/v1/briefs/{paused['id']}/pause", headers=auth(key))
    create_brief(client, key, task_groups=[group("caption", 5)])  # a draft
    _, token = sign_up_worker(client)
    _, rival = sign_up_worker(client)
    caption_a = older["task_groups"][0]["id"]
    client.post(claim_url(caption_a), headers=auth(token))
    client.post(claim_url(newer["task_groups"][1]["id"]), headers=auth(rival))  # its only task: gone

    listing = client.get("/v1/tasks", headers=auth(token))
    assert listing.status_code == 200
    rows = listing.get_json()["data"]
    # newest brief first, then the brief's own group order; paused, draft and sold-out are absent
    assert [r["id"] for r in rows] == [newer["task_groups"][0]["id"], caption_a, older["task_groups"][1]["id"]]
    assert listing.get_json()["next_cursor"] is None
    first = rows[1]
    assert first["remaining_count"] == 2 and first["held_by_you"] == 1 and first["max_per_worker"] == 2
    assert first["can_claim"] is True and first["unit_price_cents"] == 60 and first["currency"] == "usd"
    assert first["instructions"] == "Do the caption" and first["proof"]["text"]["min_length"] == 20
    assert first["brief"] == {
        "id": older["id"], "title": "Older", "key_message": "lighter shoe", "hook": "Stop", "offer": "20% off",
        "prohibitions": ["no competitor names"], "disclosure_required": True,
        "disclosure_on_media": False, "usage_rights": None,
        "landing_url": "https://shop.example.com/a", "ends_at": older["ends_at"], "promo_codes": False}
    assert first["ends_at"] == older["ends_at"]
    assert rows[0]["held_by_you"] == 0 and rows[0]["max_per_worker"] is None and rows[0]["can_claim"] is True

    client.post(claim_url(caption_a), headers=auth(token))
    mine = {r["id"]: r for r in client.get("/v1/tasks", headers=auth(token)).get_json()["data"]}
    assert caption_a not in mine  # at its max_per_worker: not a group this worker may take
    theirs = {r["id"]: r for r in client.get("/v1/tasks", headers=auth(rival)).get_json()["data"]}
    assert theirs[caption_a]["held_by_you"] == 0 and theirs[caption_a]["can_claim"] is True
    assert theirs[caption_a]["remaining_count"] == 1

    def ids(query: str) -> list[str]:  # as the rival sees them: every group but the sold-out one
        response = client.get(f"/v1/tasks?{query}", headers=auth(rival))
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["data"]]

    assert ids("kind=clip") == [older["task_groups"][1]["id"]]
    assert ids(f"brief={older['id']}") == [caption_a, older["task_groups"][1]["id"]]
    assert ids(f"brief={older['id']}&kind=review") == []
    assert ids(f"brief={paused['id']}") == []
    assert ids("brief=brief_unknown") == []

    walked, cursor = [], None
    while True:
        page = client.get("/v1/tasks?limit=1" + (f"&cursor={cursor}" if cursor else ""), headers=auth(rival))
        walked += [r["id"] for r in page.get_json()["data"]]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert walked == [r["id"] for r in rows]


def test_listing_rejects_bad_filters_with_422(app, client):
    _, token = sign_up_worker(client)
    for query, field in [("kind=dance", "kind"), ("limit=0", "limit"), ("limit=501", "limit"),
                         ("limit=ten", "limit"), ("cursor=not-a-cursor", "cursor"), ("brief=" + "x" * 101, "brief")]:
        body = assert_problem(client.get(f"/v1/tasks?{query}", headers=auth(token)), 422)
        assert field in body["errors"], (query, body)


def test_listing_counts_take_the_same_statements_however_many_groups(app, client, standin, sql_statements):
    _, token = sign_up_worker(client)

    def statements_for_listing() -> tuple[int, int]:
        with sql_statements as seen:
            rows = client.get("/v1/tasks", headers=auth(token)).get_json()["data"]
        return len(rows), len(seen)

    live_groups(client, standin, [group("caption", 2)])
    one = statements_for_listing()
    live_groups(client, standin, [group(kind, 2) for kind in ("clip", "review", "survey", "translation")])
    five = statements_for_listing()
    assert one[0] == 1 and five[0] == 5
    assert one[1] == five[1]


def test_my_claims_lists_active_claims_with_their_countdown(app, client, standin):
    brief, _ = live_groups(client, standin, [group(quantity=5), group("clip", 5, price=100)])
    caption, clip = (g["id"] for g in brief["task_groups"])
    _, token = sign_up_worker(client)
    _, other = sign_up_worker(client)
    first = client.post(claim_url(caption), headers=auth(token)).get_json()
    second = client.post(claim_url(clip), headers=auth(token)).get_json()
    third = client.post(claim_url(caption), headers=auth(token)).get_json()
    client.post(claim_url(caption), headers=auth(other))
    client.post(f"/v1/tasks/{second['task']['id']}/release", headers=auth(token))

    page = client.get("/v1/me/claims", headers=auth(token)).get_json()
    assert [c["claim_id"] for c in page["data"]] == [third["claim_id"], first["claim_id"]]
    row = page["data"][1]
    assert row["tracked_link"] == first["tracked_link"] and row["claim_expires_at"] == first["claim_expires_at"]
    assert 3500 < row["expires_in_seconds"] <= 3600 and row["task"]["group_id"] == caption
    assert row["brief"]["id"] == brief["id"] and row["status"] == "active"

    one = client.get("/v1/me/claims?limit=1", headers=auth(token)).get_json()
    assert [c["claim_id"] for c in one["data"]] == [third["claim_id"]]
    rest = client.get(f"/v1/me/claims?limit=1&cursor={one['next_cursor']}", headers=auth(token)).get_json()
    assert [c["claim_id"] for c in rest["data"]] == [first["claim_id"]] and rest["next_cursor"] is None
    assert_problem(client.get("/v1/me/claims?cursor=zzz", headers=auth(token)), 422)


def test_remaining_count_is_exact_up_to_the_cap_and_flagged_past_it(client, standin, monkeypatch):
    from marketplace.tasks import service as tasks

    monkeypatch.setattr(tasks, "REMAINING_COUNT_CAP", 4)
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 6, "unit_price_cents": 10},
        {"kind": "review", "quantity": 3, "unit_price_cents": 10}], budget_cents=10_000)
    _, token = sign_up_worker(client)
    listed = {g["kind"]: g for g in client.get("/v1/tasks", headers=auth(token)).get_json()["data"]}
    assert (listed["caption"]["remaining_count"], listed["caption"]["remaining_count_capped"]) == (4, True)
    assert (listed["review"]["remaining_count"], listed["review"]["remaining_count_capped"]) == (3, False)
    factories.claim(client, token, brief["task_groups"][0]["id"])
    factories.claim(client, token, brief["task_groups"][0]["id"])
    listed = {g["kind"]: g for g in client.get("/v1/tasks", headers=auth(token)).get_json()["data"]}
    assert (listed["caption"]["remaining_count"], listed["caption"]["remaining_count_capped"]) == (4, False)


def test_a_claim_refused_for_its_brief_lets_go_of_the_worker_row_at_once(app, client, standin):
    """The group read takes the worker's row lock in the same statement; a claim refused there (the
    brief paused) must not keep holding it while the error is answered."""
    import pytest

    from marketplace.errors import Conflict
    from marketplace.extensions import db
    from marketplace.tasks import service

    _, key = sign_up_brand(client)
    worker, _ = sign_up_worker(client)
    paused, _ = live_groups(client, standin, [group(quantity=2)], key=key)
    assert client.post(f"/v1/briefs/{paused['id']}/pause", headers=auth(key)).status_code == 200
    with app.app_context():
        with pytest.raises(Conflict, match="paused"):
            service.claim(worker["id"], paused["task_groups"][0]["id"])
        # Still inside the refused claim's app context, before any teardown: another connection
        # takes the worker's row without waiting.
        with db.engine.connect() as other:
            assert other.execute(sa.text("SELECT id FROM workers WHERE id = :w FOR UPDATE NOWAIT"),
                                 {"w": worker["id"]}).scalar() == worker["id"]
            other.rollback()
        db.session.remove()


def test_a_retried_claim_gets_the_first_answer_back_and_holds_one_task(client, standin, db_session):
    """The 201 is recorded under the Idempotency-Key in the claim's own commit: the retry is
    answered from the record, and the worker holds the one task of the first try."""
    brief, _ = live_groups(client, standin, [group(quantity=3)])
    group_id = brief["task_groups"][0]["id"]
    me, token = sign_up_worker(client)
    headers = {**auth(token), "Idempotency-Key": "claim-once"}
    first = client.post(claim_url(group_id), headers=headers)
    again = client.post(claim_url(group_id), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.get_json() == first.get_json()
    held = db_session.execute(sa.text("SELECT task_id FROM claims WHERE worker_id = :w"), {"w": me["id"]}).scalars().all()
    assert held == [first.get_json()["task"]["id"]]
    body = db_session.execute(sa.text("SELECT status_code, body FROM idempotency_records WHERE key = 'claim-once'")).one()
    assert body.status_code == 201 and bytes(body.body) == first.get_data()


def test_a_connection_lost_before_the_claims_commit_holds_nothing_and_the_retry_claims(
        app, client, standin, db_session, monkeypatch):
    """The database connection dies after the claim's statements ran and before its COMMIT (its
    backend terminated from outside): the task stays open, no claim and no answer are recorded,
    the client hears 503, and the same Idempotency-Key then claims for real, once."""
    from marketplace.tasks import service

    brief, _ = live_groups(client, standin, [group(quantity=2)])
    group_id = brief["task_groups"][0]["id"]
    me, token = sign_up_worker(client)
    view = service.claim_view
    killed = []

    def view_then_lose_the_connection(*args, **kwargs):
        # The claim's transaction is open on the direct pool: end its backend as a crash would.
        with app.app_context():
            from marketplace.db import direct
            with direct.engine().connect() as admin:
                killed.extend(admin.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND application_name = 'marketplace-direct-durable'")).scalars())
        return view(*args, **kwargs)

    monkeypatch.setattr(service, "claim_view", view_then_lose_the_connection)
    headers = {**auth(token), "Idempotency-Key": "claim-across-a-crash"}
    lost = client.post(claim_url(group_id), headers=headers)
    assert killed == [True]
    assert_problem(lost, 503)
    counts = lambda: db_session.execute(sa.text(  # noqa: E731
        "SELECT (SELECT count(*) FROM claims WHERE worker_id = :w), "
        "(SELECT count(*) FROM tasks WHERE group_id = :g AND status = 'open'), "
        "(SELECT count(*) FROM idempotency_records WHERE key = 'claim-across-a-crash')"),
        {"w": me["id"], "g": group_id}).one()
    assert tuple(counts()) == (0, 2, 0)
    db_session.rollback()
    monkeypatch.setattr(service, "claim_view", view)
    retried = client.post(claim_url(group_id), headers=headers)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert tuple(counts()) == (1, 1, 1)


def _claim_and_die_after_the_commit(token: str, group_id: str, key: str) -> None:
    """Runs in a spawned process: claims, and the process dies the moment the claim's transaction
    has committed, before a byte of the answer is written (as a SIGKILLed web worker would)."""
    import os

    from marketplace import create_app
    from marketplace.http import idempotency

    idempotency.recorded = lambda response: os._exit(17)  # the route's first step after the commit
    app = create_app({"TESTING": True})
    app.test_client().post(claim_url(group_id), headers={**auth(token), "Idempotency-Key": key})
    os._exit(0)  # not reached: had it been, the test below fails on the exit code


def test_a_web_worker_dying_after_the_claims_commit_leaves_its_answer_for_the_retry(client, standin, db_session):
    """The claim and its recorded 201 commit together: a process that dies right after the commit
    leaves no key reserved and unanswered (which would make the retry wait, then claim a second
    task); the retry gets the first claim back."""
    brief, _ = live_groups(client, standin, [group(quantity=3)])
    group_id = brief["task_groups"][0]["id"]
    me, token = sign_up_worker(client)
    process = multiprocessing.get_context("spawn").Process(
        target=_claim_and_die_after_the_commit, args=(token, group_id, "claim-then-die"))
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 17
    retried = client.post(claim_url(group_id), headers={**auth(token), "Idempotency-Key": "claim-then-die"})
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    held = db_session.execute(sa.text("SELECT id, task_id FROM claims WHERE worker_id = :w"), {"w": me["id"]}).all()
    assert [(c.id, c.task_id) for c in held] == [(retried.get_json()["claim_id"], retried.get_json()["task"]["id"])]
