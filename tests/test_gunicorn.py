"""The web process as the Procfile runs it (gunicorn -c gunicorn.conf.py): every answer to a request
head that is too big or not HTTP at all is a problem document, the app's own where it can be."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketplace import REPO_ROOT

GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web(test_environment):
    """gunicorn with the Procfile's configuration, one worker, on a free port."""
    port = _free_port()
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=REPO_ROOT, env={**os.environ, "PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        try:
            if _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "gunicorn never answered /healthz"
        time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(timeout=10)


def _raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are; the status, Content-Type and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
                b"content-length:")]
            if length and len(body) >= length[0]:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith(
        "content-type:")), "")
    return int(lines[0].split()[1]), content_type, body


def _get(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    head = f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    status, content_type, body = _raw(port, (head + "\r\n").encode("latin-1"))
    return status, content_type, json.loads(body) if body else {}


@pytest.mark.parametrize("length, answered_by", [(5000, "the app"), (9000, "gunicorn")])
def test_a_long_url_is_a_414_problem_document(web, length, answered_by):
    status, content_type, body = _get(web, "/v1/briefs?cursor=" + "a" * length)
    assert (status, content_type) == (414, "application/problem+json"), body
    assert body["status"] == 414 and body["type"].endswith("/request-uri-too-long")
    if answered_by == "the app":
        assert "at most 4096" in body["detail"]


@pytest.mark.parametrize("size, answered_by", [(9000, "the app"), (40000, "gunicorn")])
def test_a_big_header_is_a_431_problem_document(web, size, answered_by):
    status, content_type, body = _get(web, "/v1/briefs", {"X-Padding": "p" * size})
    assert (status, content_type) == (431, "application/problem+json"), body
    assert body["status"] == 431 and body["type"].endswith("/request-header-fields-too-large")
    if answered_by == "the app":
        assert "X-Padding" in body["detail"]


def test_many_headers_and_a_line_that_is_not_http_are_problem_documents_too(web):
    status, content_type, body = _get(web, "/v1/briefs", {f"X-Many-{n}": "1" for n in range(150)})
    assert (status, content_type, body["status"]) == (431, "application/problem+json", 431)
    status, content_type, body = _raw(web, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, content_type) == (400, "application/problem+json")
    assert json.loads(body)["status"] == 400


def test_headers_within_the_limits_reach_the_app(web):
    status, content_type, body = _get(web, "/v1/briefs?cursor=" + "a" * 3000, {"X-Padding": "p" * 7000})
    # The app read it: no key, so 401 (not a size refusal).
    assert (status, content_type, body["status"]) == (401, "application/problem+json", 401)


def test_the_spec_lists_414_and_431_on_every_operation(client):
    spec = client.get("/openapi.json").get_json()
    operations = [(path, method, op) for path, item in spec["paths"].items() if path.startswith("/v1/")
                  for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")]
    assert operations
    for path, method, op in operations:
        assert {"414", "431"} <= set(op["responses"]), (method, path)


def test_the_app_refuses_an_oversized_head_through_any_server(client):
    """The same limits under the test client (and werkzeug's server behind `make run`)."""
    response = client.get("/v1/tasks?cursor=" + "a" * 5000)
    assert (response.status_code, response.content_type) == (414, "application/problem+json")
    response = client.get("/v1/tasks", headers={f"X-Pad-{n}": "p" * 4000 for n in range(9)})
    assert response.status_code == 431 and "together" in response.get_json()["detail"]
