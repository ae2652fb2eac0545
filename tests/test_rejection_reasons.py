"""Every rejection carries its reason code and its evidence: an automatic rejection by the
validation job as well as a reviewer's, on the submission, in the notification and in the appeal."""

from __future__ import annotations

import pytest

from marketplace.proofs.lifecycle import CODE_PRECEDENCE, reason_code_for, rejection_reason
from marketplace.proofs.models import REASON_CODES
from tests.factories import auth, sign_up_worker
from tests.factories.proofs import (
    claimed_task,
    proof_brief,
    run_validation_jobs,
    submission,
    submit,
    submitted,
)
from tests.factories.tasks import claim

CAPTIONS = [{"kind": "caption", "quantity": 10, "unit_price_cents": 60, "instructions": "Write a caption",
             "proof": {"text": {"min_length": 20, "max_length": 300}}}]


def _feed(client, token):
    return client.get("/v1/me/notifications", headers=auth(token)).get_json()["data"]


def test_a_text_without_disclosure_and_too_short_is_rejected_for_the_gravest_reason_with_both_details(
        app, client, standin):
    _, brief = proof_brief(client, standin, CAPTIONS, disclosure_required=True)
    token, sub_id = submitted(client, brief, text="far too short")
    run_validation_jobs(app)

    body = submission(client, token, sub_id)
    assert body["status"] == "auto_rejected"
    assert body["reason_code"] == "missing_disclosure"
    assert "disclosure check failed" in body["reason"] and "text check failed" in body["reason"]
    assert {r["check"]: r["reason_code"] for r in body["reasons"]} == {
        "disclosure": "missing_disclosure", "text": "low_quality"}
    [told] = _feed(client, token)
    assert (told["kind"], told["reason_code"]) == ("rejected", "missing_disclosure")
    # The worker can appeal it: an automatic rejection is inside its window like any other.
    assert body["appealable_until"] is not None
    appealed = client.post(f"/v1/submissions/{sub_id}/appeal", json={"message": "It has #ad"}, headers=auth(token))
    assert appealed.status_code == 201, appealed.get_json()


def test_an_upload_that_is_no_picture_is_rejected_as_low_quality(app, client, standin):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=b"this is no picture at all").get_json()["id"]
    run_validation_jobs(app)

    body = submission(client, token, sub_id)
    assert (body["status"], body["reason_code"]) == ("auto_rejected", "low_quality")
    assert body["reason"].startswith("screenshot check failed: ")


def test_a_near_copy_of_another_workers_text_is_rejected_as_a_duplicate(app, client, standin):
    _, brief = proof_brief(client, standin, CAPTIONS, disclosure_required=False)
    text = "Lighter shoe, same grip: I ran ten kilometres in them this morning and loved every step #ad"
    first_token, first = submitted(client, brief, text=text)
    run_validation_jobs(app)
    assert submission(client, first_token, first)["status"] == "needs_review"
    _, copier = sign_up_worker(client)
    held = claim(client, copier, brief["task_groups"][0]["id"])
    copy_id = submit(client, copier, held["task"]["id"], text=text).get_json()["id"]
    run_validation_jobs(app)

    body = submission(client, copier, copy_id)
    assert (body["status"], body["reason_code"]) == ("auto_rejected", "duplicate")
    # The evidence names no other submission: the worker (and the brand's events) read it as it is.
    assert "near copy check failed" in body["reason"] and "another submission" in body["reason"]
    assert first not in body["reason"]


def test_a_reviewers_rejection_keeps_its_own_code_and_reason(app, client, standin, runner):
    from tests.factories import make_admin

    _, brief = proof_brief(client, standin, CAPTIONS, disclosure_required=False)
    token, sub_id = submitted(client, brief, text="A caption long enough to pass every check here")
    run_validation_jobs(app)
    admin = make_admin(runner)
    decided = client.post("/v1/review/decisions", headers=auth(admin), json={
        "submission_ids": [sub_id], "decision": "reject", "reason_code": "off_brief",
        "reason": "It is about another shoe."})
    assert decided.get_json()["rejected"] == 1
    body = submission(client, token, sub_id)
    assert (body["reason_code"], body["reason"]) == ("off_brief", "It is about another shoe.")


@pytest.mark.parametrize(("reasons", "code"), [
    ([{"check": "link", "detail": "link answered 404: the post is not there"}], "broken_link"),
    ([{"check": "prohibited", "detail": "text contains prohibited phrase"}], "off_brief"),
    ([{"check": "timestamp", "detail": "captured before the claim"}], "other"),
    ([{"check": "link", "detail": "x"}, {"check": "duplicate", "detail": "y"}], "duplicate"),
    ([{"check": "screenshot", "detail": "no disclosure", "reason_code": "missing_disclosure"},
      {"check": "text", "detail": "short"}], "missing_disclosure"),
    ([{"check": "something_new", "detail": "?"}], "other"),
    ([], "other"),
])
def test_reason_codes_of_failed_checks_are_the_contracts(reasons, code):
    got, evidence = rejection_reason(reasons)
    assert got == code and got in REASON_CODES and evidence
    assert set(CODE_PRECEDENCE) == set(REASON_CODES)
    assert reason_code_for("screenshot", {"disclosure_found": None}) == "missing_disclosure"
    assert reason_code_for("screenshot", {"format": "PNG"}) == "low_quality"
