"""A worker's notifications: written with the change they report, listed and read through the API,
and e-mailed by a background job to a real SMTP server (aiosmtpd, in this process)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller

from tests.factories import auth, make_admin, sign_up_worker
from tests.factories.jobs import run_job
from tests.factories.payouts import approved_work, ready_worker, run_payout_jobs
from tests.factories.proofs import proof_brief, run_validation_jobs, submit
from tests.factories.tasks import claim


class Inbox:
    """An aiosmtpd handler that keeps what it was sent; `refuse` makes it answer 451 to every message."""

    def __init__(self) -> None:
        self.messages: list = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse:
            return "451 Try again later"
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server(app, port: int | None = None):
    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = app.config.get("SMTP_URL")
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()
        app.config["SMTP_URL"] = saved


def feed(client, token: str, **query) -> dict:
    response = client.get("/v1/me/notifications", query_string=query, headers=auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def needs_review(app, client, standin, n: int = 1):
    """n workers each with one submission waiting for a person: [(worker, token)], brief id."""
    workers = [sign_up_worker(client) for _ in range(n)]
    brief_id = approved_work(app, client, standin, [(w["id"], t) for w, t in workers], 200, status="needs_review")
    return workers, brief_id


def submission_of(app, worker_id: str) -> str:
    from marketplace.extensions import db
    from marketplace.proofs.models import Submission

    with app.app_context():
        found = db.session.query(Submission.id).filter_by(worker_id=worker_id).one()[0]
        db.session.remove()
        return found


def decide(client, admin: str, ids: list[str], decision: str, **extra) -> dict:
    response = client.post("/v1/review/decisions", json={"submission_ids": ids, "decision": decision, **extra},
                           headers=auth(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def run_email_job(app) -> dict:
    return run_job(app, "workers.notifications.send_pending_emails")


def test_each_decision_tells_its_worker_once_with_the_reason(app, client, runner, standin):
    admin = make_admin(runner)
    workers, _ = needs_review(app, client, standin, n=3)
    (approved_w, approved_t), (rejected_w, rejected_t), (revised_w, revised_t) = workers
    approve_id, reject_id, revise_id = (submission_of(app, w["id"]) for w, _ in workers)

    decide(client, admin, [approve_id], "approve")
    decide(client, admin, [reject_id], "reject", reason_code="off_brief", reason="The caption names a competitor.")
    decide(client, admin, [revise_id], "request_revision", reason_code="low_quality", reason="Say it in one line.")
    # Deciding again (already decided: skipped) tells nobody twice.
    decide(client, admin, [approve_id, reject_id], "approve")

    approved = feed(client, approved_t)
    assert [(n["kind"], n["subject_id"]) for n in approved["data"]] == [("approved", approve_id)]
    assert approved["unread"] == 1 and approved["data"][0]["read"] is False
    rejected = feed(client, rejected_t)["data"]
    assert [(n["kind"], n["reason_code"], n["message"]) for n in rejected] == [
        ("rejected", "off_brief", "The caption names a competitor.")]
    revised = feed(client, revised_t)["data"]
    assert [(n["kind"], n["reason_code"]) for n in revised] == [("revision_requested", "low_quality")]
    assert approved_w["id"] != rejected_w["id"] != revised_w["id"]


def test_an_automatic_rejection_says_which_check_failed(app, client, standin):
    _, brief = proof_brief(client, standin)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    sub_id = submit(client, token, held["task"]["id"], screenshot=b"this is no picture at all").get_json()["id"]
    run_validation_jobs(app)

    [told] = feed(client, token)["data"]
    assert (told["kind"], told["subject_id"], told["reason_code"]) == ("rejected", sub_id, "low_quality")
    assert "screenshot" in told["message"]


def test_a_payment_tells_its_worker_the_amount(app, client, runner, standin):
    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 350)
    assert client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).status_code == 202
    run_payout_jobs(app)

    paid = [n for n in feed(client, token)["data"] if n["kind"] == "paid"]
    assert len(paid) == 1 and paid[0]["amount_cents"] == 350 and paid[0]["currency"] == "usd"
    assert paid[0]["title"] == "You were paid: 3.50 USD"


def test_marking_read_by_id_and_all_and_never_anothers(app, client, runner, standin):
    admin = make_admin(runner)
    workers, _ = needs_review(app, client, standin, n=2)
    ids = [submission_of(app, w["id"]) for w, _ in workers]
    decide(client, admin, ids, "reject", reason_code="other", reason="No.")
    (_, mine), (_, theirs) = workers
    my_note = feed(client, mine)["data"][0]["id"]
    their_note = feed(client, theirs)["data"][0]["id"]

    answer = client.post("/v1/me/notifications/read", json={"ids": [their_note]}, headers=auth(mine))
    assert answer.status_code == 200 and answer.get_json() == {"marked": 0, "unread": 1}
    assert feed(client, theirs)["unread"] == 1  # untouched

    answer = client.post("/v1/me/notifications/read", json={"ids": [my_note]}, headers=auth(mine))
    assert answer.get_json() == {"marked": 1, "unread": 0}
    assert feed(client, mine, unread="true")["data"] == []
    assert feed(client, mine)["data"][0]["read"] is True

    answer = client.post("/v1/me/notifications/read", json={"ids": "all"}, headers=auth(theirs))
    assert answer.get_json() == {"marked": 1, "unread": 0}


@pytest.mark.parametrize("body", [{}, {"ids": 5}, {"ids": "some"}, {"ids": [7]}, {"ids": ["x" * 41]},
                                  {"ids": ["ntf_a"] * 501}, {"ids": "all", "extra": 1}])
def test_bad_read_requests_are_422_and_change_nothing(app, client, runner, standin, body):
    admin = make_admin(runner)
    [(worker, token)], _ = needs_review(app, client, standin)
    decide(client, admin, [submission_of(app, worker["id"])], "approve")
    answer = client.post("/v1/me/notifications/read", json=body, headers=auth(token))
    assert answer.status_code == 422 and answer.content_type == "application/problem+json"
    assert feed(client, token)["unread"] == 1


def test_notifications_are_the_workers_own(client, runner):
    admin = make_admin(runner)
    assert client.get("/v1/me/notifications", headers=auth(admin)).status_code == 403
    assert client.get("/v1/me/notifications").status_code == 401


def test_decisions_are_emailed_by_the_job_through_a_real_smtp_server(app, client, runner, standin):
    admin = make_admin(runner)
    with smtp_server(app) as inbox:
        [(worker, token)], _ = needs_review(app, client, standin)
        sub_id = submission_of(app, worker["id"])
        decide(client, admin, [sub_id], "reject", reason_code="missing_disclosure", reason="No #ad on the clip.")
        assert inbox.messages == []  # the decision does not wait for the mail

        assert run_email_job(app)["sent"] >= 1
        [mail] = [m for m in inbox.messages if worker["email"] in m.rcpt_tos]
        text = mail.content.decode()
        assert "Subject: Your submission was rejected" in text
        assert "missing disclosure" in text and "No #ad on the clip." in text and sub_id in text

        run_email_job(app)  # sent once: a second sweep finds nothing of it to send
        assert len([m for m in inbox.messages if worker["email"] in m.rcpt_tos]) == 1


def test_a_failed_send_never_blocks_the_decision_and_is_retried_until_it_goes(app, client, runner, standin):
    from marketplace.extensions import db
    from marketplace.notifications import service
    from marketplace.notifications.models import Notification

    admin = make_admin(runner)
    port = free_port()
    saved = app.config.get("SMTP_URL")
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"  # nothing listens there yet: the server is down
    try:
        [(worker, token)], _ = needs_review(app, client, standin)
        sub_id = submission_of(app, worker["id"])
        decide(client, admin, [sub_id], "approve")  # 200 though the mail server is down
        assert run_email_job(app)["sent"] == 0
        with app.app_context():
            row = db.session.query(Notification).filter_by(subject_id=sub_id).one()
            assert (row.email_state, row.email_attempts) == ("pending", 1)
            assert "Connection refused" in row.email_error or "Errno" in row.email_error
            retry_at = row.email_next_at
            db.session.remove()
        assert feed(client, token)["data"][0]["kind"] == "approved"  # in the feed all the same

        with smtp_server(app, port) as inbox:
            inbox.refuse = True  # up, but answering 451 to the message
            with app.app_context():
                assert service.send_pending_emails(now=retry_at)["failed"] >= 1
                db.session.remove()
            inbox.refuse = False
            with app.app_context():
                row = db.session.query(Notification).filter_by(subject_id=sub_id).one()
                assert row.email_attempts == 2 and row.email_next_at > retry_at  # backing off
                later = row.email_next_at
                db.session.remove()
                assert service.send_pending_emails(now=later)["sent"] >= 1
                row = db.session.query(Notification).filter_by(subject_id=sub_id).one()
                assert row.email_state == "sent" and row.emailed_at is not None
                db.session.remove()
            assert any(worker["email"] in m.rcpt_tos for m in inbox.messages)
    finally:
        app.config["SMTP_URL"] = saved


def test_two_sweeps_at_once_mail_each_notification_once(app, client, runner, standin):
    from marketplace.extensions import db
    from marketplace.notifications import service

    admin = make_admin(runner)
    with smtp_server(app) as inbox:
        workers, _ = needs_review(app, client, standin, n=6)
        decide(client, admin, [submission_of(app, w["id"]) for w, _ in workers], "approve")
        barrier = threading.Barrier(2)

        def sweep():
            with app.app_context():
                barrier.wait()
                service.send_pending_emails()
                db.session.remove()

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(inbox.messages) < 6:
            time.sleep(0.05)
        to = [addr for m in inbox.messages for addr in m.rcpt_tos if any(addr == w["email"] for w, _ in workers)]
        assert sorted(to) == sorted(w["email"] for w, _ in workers)


def test_a_bad_smtp_url_is_refused_at_start_up():
    from marketplace.notifications.email import parse_smtp_url

    for bad in ("http://mail.example", "smtp://", "smtp://host:99999"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            parse_smtp_url(bad)
    assert parse_smtp_url("smtps://u%40x:p@mail.example").port == 465


class SlowInbox(Inbox):
    """Takes its time over each message, as a distant mail server does."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import asyncio

        self.receiving.set()
        await asyncio.sleep(self.seconds)
        return await super().handle_DATA(server, session, envelope)


def test_a_slow_mail_server_holds_no_lock_on_the_notifications_being_sent(app, client, runner, standin):
    import sqlalchemy as sa

    from marketplace.extensions import db
    from marketplace.notifications import service

    admin = make_admin(runner)
    [(worker, _)], _ = needs_review(app, client, standin)
    sub_id = submission_of(app, worker["id"])
    inbox = SlowInbox(seconds=1.5)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = app.config.get("SMTP_URL")
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    try:
        decide(client, admin, [sub_id], "approve")
        results = []

        def sweep():
            with app.app_context():
                results.append(service.send_pending_emails())
                db.session.remove()

        sending = threading.Thread(target=sweep)
        sending.start()
        assert inbox.receiving.wait(5)  # the message is on the wire now
        with app.app_context(), db.engine.connect() as other:
            locked = other.execute(sa.text(
                "SELECT id, email_next_at FROM notifications WHERE subject_id = :s FOR UPDATE NOWAIT"),
                {"s": sub_id}).one()  # raises if the sweep still held the row
            assert locked.email_next_at is not None  # leased instead: other sweeps skip it until the lease ends
            other.rollback()
        sending.join(10)
        assert results == [{"sent": 1, "failed": 0}]
    finally:
        controller.stop()
        app.config["SMTP_URL"] = saved


def test_a_sweep_that_dies_mid_send_is_mailed_again_when_its_lease_ends(app, client, runner, standin):
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.notifications import service

    admin = make_admin(runner)
    with smtp_server(app) as inbox:
        [(worker, _)], _ = needs_review(app, client, standin)
        decide(client, admin, [submission_of(app, worker["id"])], "approve")
        now = utcnow()
        with app.app_context():
            assert len(service._lease_due(now)) == 1  # leased …
            db.session.commit()  # … and the process dies before the mail is sent or recorded
            db.session.remove()
            assert service.send_pending_emails(now=now) == {"sent": 0, "failed": 0}  # still leased
            later = now + service.EMAIL_LEASE + service.timedelta(seconds=1)
            assert service.send_pending_emails(now=later) == {"sent": 1, "failed": 0}
            db.session.remove()
        assert [m.rcpt_tos for m in inbox.messages] == [[worker["email"]]]


def test_marking_all_read_from_two_tabs_at_once_counts_each_notification_once(app, client, runner, standin):
    admin = make_admin(runner)
    [(worker, token)], _ = needs_review(app, client, standin, n=1)
    decide(client, admin, [submission_of(app, worker["id"])], "approve")
    barrier = threading.Barrier(2)
    answers = []

    def mark_all():
        with app.test_client() as tab:
            barrier.wait()
            answers.append(tab.post("/v1/me/notifications/read", json={"ids": "all"}, headers=auth(token)))

    tabs = [threading.Thread(target=mark_all) for _ in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(10)
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.get_json()["marked"] for a in answers) == [0, 1]  # one tab marked it, the other found it read
    assert feed(client, token)["unread"] == 0
