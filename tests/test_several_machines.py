"""Several machines' worth of processes on one database and one Redis: two web processes (gunicorn,
as the Procfile runs it) and two RQ worker processes. The claim race is run against both web
processes at once, proofs are validated by whichever worker takes the job, and a payout batch
started on one web process is paid by the workers and read back on the other, once per worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketplace import REPO_ROOT
from tests.factories import auth, live_brief, sign_up_brand, wait_for
from tests.factories.accounts import make_admin
from tests.factories.payouts import ready_worker

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# Distinct captions: near-identical texts would be caught as copies of each other.
CAPTIONS = [
    "Morning miles feel easier when your trainers weigh almost nothing at all",
    "Rain on the canal path and not one slip, these soles really hold on",
    "Swapped my old heavy pair and shaved a minute off my Sunday loop",
    "Hill repeats in Richmond park, calves fine, grip perfect on wet gravel",
    "Commuter run across the bridge, light enough to forget I had them on",
    "Track night intervals with friends, everyone asked where I got these",
    "First trail half marathon done in them, muddy descent and zero drama",
    "Lunch break 5k by the river, back at my desk feeling fresh and quick",
    "Parkrun personal best this weekend, the bounce off the toe is unreal",
    "Night jog under street lamps, reflective heel tab is a thoughtful touch",
    "Recovery shuffle after leg day, soft landing and steady on cobbles",
    "Beach sprint at low tide, sand everywhere yet they dried out in an hour",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self._body = status, body

    def get_json(self):
        return json.loads(self._body) if self._body else None


class Web:
    """One web process, reached over HTTP like any client would."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, *, json_body=None, headers=None) -> Answer:
        data = json.dumps(json_body).encode() if json_body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return Answer(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read())

    def post(self, path: str, json=None, headers=None) -> Answer:
        return self.request("POST", path, json_body=json, headers=headers)

    def get(self, path: str, headers=None) -> Answer:
        return self.request("GET", path, headers=headers)


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def machines(app, standin, tmp_path):
    """Two gunicorn web processes and two RQ workers, each with its own environment built from the
    test run's services (the same database, Redis and Stripe stand-in)."""
    from marketplace.jobs import queue_name

    base_env = {**os.environ, "LOGIN_RATE_LIMIT_PER_ADDRESS": "10000/minute", "CLAIM_RATE_LIMIT": "off",
                "LOG_LEVEL": "WARNING"}
    processes, webs = [], []
    try:
        for n in range(2):
            port = _free_port()
            processes.append(_start(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                {**base_env, "PORT": str(port), "STORAGE_DIR": str(tmp_path / f"web-{n}")}))
            webs.append(Web(port))
        queues = [queue_name(q, app) for q in ("validation", "payouts", "default")]
        for n in range(2):
            processes.append(_start(
                [str(BIN / "rq"), "worker", "--worker-class", "workers.PreloadedWorker",  # as the Procfile runs it
                 "--url", app.config["REDIS_URL"], "-n", f"machine-{n}-{os.getpid()}",
                 *queues], {**base_env, "STORAGE_DIR": str(tmp_path / f"worker-{n}")}))
        for web, process in zip(webs, processes, strict=False):
            def healthy(web=web, process=process):
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                try:
                    return web.get("/healthz").status_code == 200
                except OSError:
                    return False
            wait_for(healthy, timeout=30)
        yield webs
    finally:
        for process in processes:
            _stop(process)


def test_the_claim_race_and_a_payout_batch_across_two_web_processes_and_two_workers(
        app, client, runner, standin, machines, db_session):
    web_a, web_b = machines
    quantity, crowd = 12, 24
    people = [ready_worker(client, standin) for _ in range(crowd)]  # payout accounts onboarded
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, budget_cents=20000, task_groups=[
        {"kind": "caption", "quantity": quantity, "unit_price_cents": 150, "max_per_worker": 1,
         "instructions": "Write a caption", "proof": {"text": {"min_length": 20, "max_length": 300}}}])
    group_id = brief["task_groups"][0]["id"]

    # The race: every worker claims at once, half through each web process.
    barrier, answers = threading.Barrier(crowd), [None] * crowd

    def rush(i: int) -> None:
        web = (web_a, web_b)[i % 2]
        barrier.wait(timeout=30)
        answers[i] = web.post(f"/v1/task-groups/{group_id}/claim", headers=auth(people[i][1]))

    threads = [threading.Thread(target=rush, args=(i,)) for i in range(crowd)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    won = [(i, a.get_json()) for i, a in enumerate(answers) if a.status_code == 201]
    assert len(won) == quantity, Counter(a.status_code for a in answers)
    assert all(a.status_code == 409 for a in answers if a.status_code != 201), \
        [a.get_json() for a in answers if a.status_code not in (201, 409)]
    assert len({body["task"]["id"] for _, body in won}) == quantity  # no task handed out twice
    assert {i % 2 for i, _ in won} == {0, 1}  # both web processes handed out tasks

    # Proof through either web process; validated by whichever RQ worker takes the job.
    submission_ids = []
    for n, (i, held) in enumerate(won):
        web = (web_a, web_b)[i % 2]
        sent = web.post(f"/v1/tasks/{held['task']['id']}/submissions", headers=auth(people[i][1]),
                        json={"text": CAPTIONS[n] + " #ad"})
        assert sent.status_code == 202, sent.get_json()
        submission_ids.append(sent.get_json()["id"])

    def statuses() -> Counter:
        db_session.rollback()
        return Counter(db_session.execute(sa.text("SELECT status FROM submissions")).scalars())

    try:
        wait_for(lambda: statuses() == Counter({"needs_review": quantity}), timeout=60)
    except AssertionError:
        failed = db_session.execute(sa.text(
            "SELECT name, outcome, detail FROM submission_checks WHERE outcome <> 'pass'")).all()
        raise AssertionError(f"statuses {statuses()}: {failed}") from None

    admin_key = make_admin(runner)
    decided = web_b.post("/v1/review/decisions", headers=auth(admin_key), json={
        "submission_ids": submission_ids, "decision": "approve"})
    assert decided.status_code == 200 and decided.get_json()["approved"] == quantity, decided.get_json()

    # The payout batch: asked of one web process, paid by the worker processes, read on the other.
    standin.make_funds_available()
    started = web_a.post("/v1/payout-batches", headers=auth(admin_key),
                         json={"currency": "usd", "min_amount_cents": 100})
    assert started.status_code == 202, started.get_json()
    batch_id = started.get_json()["id"]
    batch = wait_for(lambda: (b := web_b.get(f"/v1/payout-batches/{batch_id}", headers=auth(admin_key)).get_json())
                     ["status"] in ("completed", "completed_with_failures") and b, timeout=90)
    assert batch["status"] == "completed", batch
    paid = {item["worker_id"]: item for item in batch["items"]}
    winners = {people[i][0]["id"] for i, _ in won}
    assert set(paid) == winners and all(item["status"] == "paid" for item in paid.values())
    assert all(item["amount_cents"] == 150 for item in paid.values())

    # Once per worker at Stripe, whichever process sent it.
    transfers = standin.engine.stores["transfer"].values()
    by_worker = Counter(t["metadata"]["worker_id"] for t in transfers if t.get("transfer_group") == batch_id)
    assert by_worker == Counter({worker_id: 1 for worker_id in winners}), by_worker
    again = web_b.post("/v1/payout-batches", headers=auth(admin_key), json={"currency": "usd", "min_amount_cents": 100})
    if again.status_code == 202:  # nothing left to pay: the second batch pays nobody
        second = wait_for(lambda: (b := web_a.get(f"/v1/payout-batches/{again.get_json()['id']}",
                                                  headers=auth(admin_key)).get_json())["status"] != "pending" and b)
        assert second["items"] == []
    else:
        assert again.status_code in (409, 422), again.get_json()
    time.sleep(0.5)
    assert sum(1 for t in standin.engine.stores["transfer"].values()) == quantity
