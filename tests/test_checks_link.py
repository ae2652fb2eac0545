"""Link check: strict parsing, allowed domains, tracking content and the SSRF guard."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from marketplace.proofs.checks import FAIL, PASS, WARN
from marketplace.proofs.checks import link as link_module
from marketplace.proofs.checks.link import (
    host_is_allowed,
    is_forbidden_address,
    link_check,
    parse_ipv4_literal,
    parse_link,
)

HOST = "shop.tiktok.com"
# A public address handed out by stub resolvers when a test needs the first hop to look
# safe; the _open_socket seam then routes it to the local server.
PUBLIC_IP = "93.184.216.34"

# --- local HTTP server -------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.requests.append({"path": self.path, "host": self.headers.get("Host")})
        parts = urlsplit(self.path)
        route = parts.path
        try:
            if route.startswith("/ok"):
                self.answer(200, b"hello")
            elif route == "/missing":
                self.answer(404, b"not here")
            elif route == "/ratelimited":
                self.answer(429, b"slow down")
            elif route.startswith("/post/"):
                self.post(route.removeprefix("/post/"))
            elif route.startswith("/redirect/"):
                remaining = int(route.rsplit("/", 1)[1])
                if remaining == 0:
                    self.answer(200, b"arrived")
                else:
                    self.redirect(f"http://{self.headers['Host']}/redirect/{remaining - 1}")
            elif route == "/relative":
                self.redirect("/ok/relative")
            elif route == "/to":
                self.redirect(parse_qs(parts.query)["url"][0])
            elif route == "/loop":
                self.redirect("/loop")
            elif route == "/slow":
                time.sleep(1.5)
                self.answer(200, b"finally")
            elif route == "/drip":
                # A tarpit: a header byte every 0.2 s for 10 s, each read well inside the read timeout.
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                for _ in range(50):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
                self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
            elif route.startswith("/slow-hop/"):
                # Each hop answers a redirect after 0.6 s: fine alone, too slow as a chain.
                time.sleep(0.6)
                self.redirect(f"/slow-hop/{int(route.rsplit('/', 1)[1]) + 1}")
            elif route == "/huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 1024 * 1024))
                self.end_headers()
                block = b"x" * 65536
                for _ in range(160):
                    self.wfile.write(block)
            else:
                self.answer(500, b"unknown route")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the checker hung up on purpose

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def post(self, name: str) -> None:
        """A worker's post as a platform would serve it."""
        page = "<html><head><title>My run</title></head><body><p>{}</p></body></html>"
        posts = {
            "with-link": (200, "text/html; charset=utf-8",
                          page.format('Lighter shoe! <a href="https://mkt.example/t/ABC123">shop</a> #ad')),
            "with-code": (200, "text/html", page.format("Use my code ABC123 at checkout #ad")),
            "with-utm": (200, "text/html", page.format(
                '<a href="https://shop.example/?utm_source=marketplace&amp;utm_campaign=spring">shop</a>')),
            "wrong-utm": (200, "text/html", page.format(
                '<a href="https://shop.example/?utm_source=marketplace&amp;utm_campaign=springtime">shop</a>')),
            "without": (200, "text/html", page.format("Lighter shoe, same grip #ad")),
            "login-wall": (200, "text/html", page.format(
                '<form><input name="u"><input type="password" name="p"></form>')),
            "walled": (403, "text/html", page.format("Log in to see this")),
            "gone": (410, "text/html", page.format("This post was removed")),
            "deleted": (404, "text/html", page.format("Sorry, this page isn't available.")),
            "picture": (200, "image/png", "\x89PNG ABC123-looking bytes"),
            "long": (200, "text/html", page.format("x" * 200_000 + " https://mkt.example/t/ABC123")),
        }
        status, content_type, text = posts[name]
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # the slow handler must not hold up teardown
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def port(server: ThreadingHTTPServer) -> int:
    server.requests.clear()
    return server.server_address[1]


class StubResolver:
    """Hostile or friendly DNS on demand; records every lookup."""

    def __init__(self, answers: dict[str, str | list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = self.answers[host]
        return [answer] if isinstance(answer, str) else list(answer)


def check(url: str, **overrides: object):
    arguments: dict[str, object] = {
        "allowed_domains": ["tiktok.com"],
        "tracked_code": None,
        "required_utm": None,
        "allow_private": True,
        "resolver": StubResolver({HOST: "127.0.0.1"}),
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    arguments.update(overrides)
    return link_check(url, **arguments)


@pytest.fixture
def public_route(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Route connections to PUBLIC_IP to the local server; record every dialled address."""
    dialled: list[str] = []
    real_open = link_module._open_socket

    def open_socket(address, port, timeout):
        dialled.append(str(address))
        if str(address) == PUBLIC_IP:
            address = ipaddress.ip_address("127.0.0.1")
        return real_open(address, port, timeout)

    monkeypatch.setattr(link_module, "_open_socket", open_socket)
    return dialled


# --- reachability against the local server ----------------------------------------------------


def test_reachable_link_passes(port: int, server: ThreadingHTTPServer) -> None:
    result = check(f"http://{HOST}:{port}/ok")
    assert (result.name, result.outcome) == ("link", PASS)
    assert result.data["status"] == 200
    assert result.data["hops"][0]["address"] == "127.0.0.1"
    assert server.requests[-1] == {"path": "/ok", "host": f"{HOST}:{port}"}


def test_non_ascii_path_is_percent_encoded(port: int, server: ThreadingHTTPServer) -> None:
    assert check(f"http://{HOST}:{port}/ok/é?q=ü#frag").outcome == PASS
    assert server.requests[-1]["path"] == "/ok/%C3%A9?q=%C3%BC"


def test_404_fails(port: int) -> None:
    result = check(f"http://{HOST}:{port}/missing")
    assert result.outcome == FAIL and result.detail == "link answered 404: the post is not there"


# --- the post carries the tracked link ---------------------------------------------------------


@pytest.mark.parametrize(("post", "outcome", "said"), [
    ("with-link", PASS, "the post carries the tracked link (code 'ABC123')"),
    ("with-code", PASS, "the post carries the tracked link (code 'ABC123')"),
    ("without", FAIL, "the post's page does not carry the tracked link (code 'ABC123'): put the tracked link in "
                      "the post itself"),
    ("walled", WARN, "link answered 403 (the page wants a login or refuses robots); a reviewer should look"),
    ("login-wall", WARN, "the post's page asks to log in"),
    ("gone", FAIL, "link answered 410: the post is not there"),
    ("deleted", FAIL, "link answered 404: the post is not there"),
    ("picture", WARN, "the post's page is not HTML (image/png)"),
    ("long", WARN, "the first 64 KB of the post's page do not carry the tracked link"),
])
def test_the_post_page_is_searched_for_the_tracked_link(port: int, post: str, outcome: str, said: str) -> None:
    """A real post's URL never carries our code: the post does. It fails only for what is surely wrong."""
    result = check(f"http://{HOST}:{port}/post/{post}", tracked_code="ABC123", max_body=64 * 1024)
    assert (result.outcome, result.detail[:len(said)]) == (outcome, said), result.detail


def test_the_page_is_read_up_to_its_limit_and_no_further(port: int) -> None:
    result = check(f"http://{HOST}:{port}/post/long", tracked_code="ABC123")  # the default limit, 1 MiB
    assert result.outcome == PASS and result.data["hops"][0]["bytes_read"] > 200_000


def test_utm_parameters_in_the_page_count_with_their_values(port: int) -> None:
    assert check(f"http://{HOST}:{port}/post/with-utm", required_utm=UTM).outcome == PASS
    wrong = check(f"http://{HOST}:{port}/post/wrong-utm", required_utm=UTM)
    assert wrong.outcome == FAIL and "the required UTM parameters (utm_source, utm_campaign)" in wrong.detail
    either = check(f"http://{HOST}:{port}/post/with-utm", tracked_code="ZZZ999", required_utm=UTM)
    assert either.outcome == PASS


def test_a_timeout_while_reading_the_post_warns(port: int) -> None:
    result = check(f"http://{HOST}:{port}/slow", tracked_code="ABC123", read_timeout=0.5)
    assert result.outcome == WARN and "timed out" in result.detail


def test_429_only_warns(port: int) -> None:
    assert check(f"http://{HOST}:{port}/ratelimited").outcome == WARN


@pytest.mark.parametrize(("hops", "outcome"), [(1, PASS), (3, PASS), (4, FAIL)])
def test_redirect_chains(port: int, hops: int, outcome: str) -> None:
    resolver = StubResolver({HOST: "127.0.0.1"})
    result = check(f"http://{HOST}:{port}/redirect/{hops}", resolver=resolver)
    assert result.outcome == outcome
    if outcome == PASS:
        assert result.data["final_url"] == f"http://{HOST}:{port}/redirect/0"
        assert len(result.data["hops"]) == hops + 1
        assert len(resolver.calls) == hops + 1  # every hop resolved (once) and vetted
    else:
        assert result.detail == "link redirects more than 3 times"


def test_relative_redirect_is_resolved_against_the_current_url(port: int) -> None:
    result = check(f"http://{HOST}:{port}/relative")
    assert result.outcome == PASS
    assert result.data["final_url"] == f"http://{HOST}:{port}/ok/relative"


def test_redirect_loop_fails(port: int) -> None:
    assert check(f"http://{HOST}:{port}/loop", max_redirects=2).outcome == FAIL


def test_redirect_to_loopback_refused_without_allow_private(port: int, public_route: list) -> None:
    result = check(
        f"http://{HOST}:{port}/to?url=http://127.0.0.1:{port}/ok",
        allow_private=False,
        resolver=StubResolver({HOST: PUBLIC_IP}),
    )
    assert result.outcome == FAIL
    assert "forbidden address (loopback)" in result.detail
    assert public_route == [PUBLIC_IP]  # never dialled 127.0.0.1


@pytest.mark.parametrize(
    "target",
    ["http://2130706433:{port}/ok", "http://0177.0.0.1:{port}/ok", "http://0x7f.1:{port}/ok",
     "http://[::ffff:127.0.0.1]:{port}/ok"],
    ids=["decimal", "octal", "hex", "mapped-v6"],
)
def test_redirect_to_disguised_loopback_refused(port: int, public_route: list, target: str) -> None:
    result = check(
        f"http://{HOST}:{port}/to?url=" + target.format(port=port),
        allow_private=False,
        resolver=StubResolver({HOST: PUBLIC_IP}),
    )
    assert result.outcome == FAIL and "loopback" in result.detail
    assert public_route == [PUBLIC_IP]


def test_redirect_to_a_name_resolving_private_refused(port: int, public_route: list) -> None:
    resolver = StubResolver({HOST: PUBLIC_IP, "internal.example": "10.0.0.1"})
    result = check(
        f"http://{HOST}:{port}/to?url=http://internal.example/admin",
        allow_private=False,
        resolver=resolver,
    )
    assert result.outcome == FAIL
    assert "internal.example resolves to a forbidden address 10.0.0.1 (private)" in result.detail


def test_redirect_to_metadata_refused_even_with_allow_private(port: int) -> None:
    result = check(f"http://{HOST}:{port}/to?url=http://169.254.169.254/latest/meta-data/")
    assert result.outcome == FAIL
    assert "169.254.169.254 is a forbidden address (cloud metadata)" in result.detail


@pytest.mark.parametrize("target", ["ftp://tiktok.com/x", "javascript:alert(1)",
                                    "http://user@tiktok.com/"])
def test_redirect_to_unacceptable_url_fails(port: int, target: str) -> None:
    result = check(f"http://{HOST}:{port}/to?url={target}")
    assert result.outcome == FAIL and "redirects to an unacceptable URL" in result.detail


@pytest.mark.parametrize("target", ["snssdk1233://aweme/detail/123", "intent://video/1#Intent;scheme=tiktok;end"])
def test_redirect_to_an_app_link_warns(port: int, target: str) -> None:
    result = check(f"http://{HOST}:{port}/to?url={quote(target, safe='')}")
    assert result.outcome == WARN and "cannot be followed" in result.detail, result.detail


def test_a_server_error_warns_rather_than_rejecting_the_worker(port: int) -> None:
    result = check(f"http://{HOST}:{port}/unknown")  # the test server answers 500
    assert result.outcome == WARN and "500" in result.detail


def test_redirect_may_leave_the_allowed_domains(port: int) -> None:
    resolver = StubResolver({HOST: "127.0.0.1", "cdn.example.net": "127.0.0.1"})
    result = check(f"http://{HOST}:{port}/to?url=http://cdn.example.net:{port}/ok",
                   resolver=resolver)
    assert result.outcome == PASS
    assert result.data["final_url"] == f"http://cdn.example.net:{port}/ok"


def test_connection_is_pinned_to_the_vetted_address(port: int, public_route: list) -> None:
    """DNS rebinding: a second lookup would say 127.0.0.1, but there is no second lookup."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]])
    calls = []

    def rebinding(host: str, port_: int) -> list[str]:
        calls.append(host)
        return next(answers)

    result = check(f"http://{HOST}:{port}/ok", allow_private=False, resolver=rebinding)
    assert result.outcome == PASS
    assert calls == [HOST]
    assert public_route == [PUBLIC_IP]


def test_slow_server_warns_quickly(port: int) -> None:
    started = time.monotonic()
    result = check(f"http://{HOST}:{port}/slow", read_timeout=0.5)
    assert result.outcome == WARN and "timed out" in result.detail
    assert time.monotonic() - started < 1.4


def test_a_dripping_server_is_cut_off_at_the_probe_deadline(port: int) -> None:
    started = time.monotonic()
    result = check(f"http://{HOST}:{port}/drip", read_timeout=1.0, total_timeout=1.5)
    elapsed = time.monotonic() - started
    assert result.outcome == WARN and "within the probe's 1.5 s" in result.detail, result.detail
    assert elapsed < 3, elapsed


def test_the_deadline_covers_the_whole_redirect_chain(port: int) -> None:
    started = time.monotonic()
    result = check(f"http://{HOST}:{port}/slow-hop/0", read_timeout=1.0, total_timeout=1.5, max_redirects=10)
    elapsed = time.monotonic() - started
    assert result.outcome == WARN and "1.5 s" in result.detail, result.detail
    assert 1 <= len(result.data["hops"]) <= 3
    assert elapsed < 3, elapsed


def test_huge_body_reading_stops_at_the_cap(port: int) -> None:
    started = time.monotonic()
    result = check(f"http://{HOST}:{port}/huge", max_body=64 * 1024)
    assert result.outcome == PASS
    assert result.data["hops"][0]["bytes_read"] == 64 * 1024
    assert time.monotonic() - started < 2


def test_connection_refused_warns() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = check(f"http://{HOST}:{closed_port}/ok")
    assert result.outcome == WARN and "connection refused" in result.detail


def test_tls_error_warns(port: int) -> None:
    result = check(f"https://{HOST}:{port}/ok")  # a plain HTTP server on the other end
    assert result.outcome == WARN and "TLS" in result.detail


@pytest.fixture
def tls_server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server with a self-signed certificate for HOST, trusted by the checker."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST}"],
        check=True, capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    httpd.requests = []
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(link_module, "_tls_context", lambda: client_context)
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_https_is_pinned_with_sni_and_certificate_checked_on_the_name(tls_server: int) -> None:
    assert check(f"https://{HOST}:{tls_server}/ok").outcome == PASS
    # Same vetted address, other name: the certificate does not cover it.
    other = check(
        f"https://other.tiktok.com:{tls_server}/ok",
        resolver=StubResolver({"other.tiktok.com": "127.0.0.1"}),
    )
    assert other.outcome == WARN and "certificate" in other.detail


def test_dns_failure_warns() -> None:
    result = check("https://gone.tiktok.com/x", resolver=StubResolver({}))
    assert result.outcome == WARN and "could not resolve gone.tiktok.com" in result.detail


def test_resolver_surprises_never_escape() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver bug")

    assert check("https://www.tiktok.com/x", resolver=broken).outcome == WARN
    assert check("https://www.tiktok.com/x", resolver=lambda h, p: ["not-an-ip"]).outcome == WARN


def test_default_resolver_understands_getaddrinfo_tuples() -> None:
    entries = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert link_module._resolved_addresses(entries) == [ipaddress.ip_address("127.0.0.1")]


# --- hostile DNS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.10", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:7f00:1", "IPv4-mapped loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fd12:3456::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("2002:7f00:1::1", "6to4 loopback"),
        ("64:ff9b::a00:1", "NAT64 private"),
        ("224.0.0.1", "multicast"),
        ([PUBLIC_IP, "10.0.0.1"], "private"),
    ],
)
def test_hostile_dns_is_refused(answer: str | list[str], reason: str) -> None:
    result = check(
        "https://www.tiktok.com/x",
        allow_private=False,
        resolver=StubResolver({"www.tiktok.com": answer}),
    )
    assert result.outcome == FAIL
    assert "www.tiktok.com resolves to a forbidden address" in result.detail
    assert reason in result.detail


def test_metadata_stays_refused_with_allow_private() -> None:
    result = check("https://www.tiktok.com/x", allow_private=True,
                   resolver=StubResolver({"www.tiktok.com": "169.254.169.254"}))
    assert result.outcome == FAIL and "cloud metadata" in result.detail


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
        ("127.0.0.1", "loopback"),
        ("172.16.5.4", "private"),
        ("169.254.1.1", "link-local"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "benchmarking (reserved)"),
        ("192.0.2.1", "documentation (reserved)"),
        ("::", "unspecified"),
        ("::7f00:1", "IPv4-compatible loopback"),
        ("::808:808", "IPv4-compatible (deprecated, reserved)"),
        ("2001::1", "IETF special-purpose (reserved)"),
        ("2001:db8::1", "documentation (reserved)"),
        ("ff02::1", "multicast"),
        ("4000::1", "reserved"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:169.254.169.254", "IPv4-mapped cloud metadata"),
        ("::ffff:169.254.1.1", "IPv4-mapped link-local"),
        ("fd00:ec2::254", "cloud metadata"),
    ],
)
def test_is_forbidden_address(address: str, reason: str | None) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) == reason


def test_allow_private_relaxes_only_private_kinds() -> None:
    relaxed = ["127.0.0.1", "10.1.2.3", "::1", "fd12::1", "::ffff:192.168.0.1", "100.64.0.1"]
    for address in relaxed:
        assert is_forbidden_address(ipaddress.ip_address(address), allow_private=True) is None
    kept = ["169.254.169.254", "fd00:ec2::254", "169.254.1.1", "0.0.0.0", "224.0.0.1", "fe80::1"]
    for address in kept:
        assert is_forbidden_address(ipaddress.ip_address(address), allow_private=True)


# --- literal IPs in the submitted URL -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://0x7f000001/",
     "http://127.1/", "http://127.0.0.1./", "http://[::ffff:7f00:1]/", "http://017700000001/"],
)
def test_literal_ip_urls_are_recognised_and_refused(url: str) -> None:
    parsed = parse_link(url)
    assert parsed.ip is not None
    mapped = getattr(parsed.ip, "ipv4_mapped", None) or parsed.ip
    assert mapped == ipaddress.ip_address("127.0.0.1")
    result = check(url, allowed_domains=[])
    assert result.outcome == FAIL and "not an IP address" in result.detail


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1", "127.1", "0x7f.1", "0177.0.0.1", "2130706433", "0x7f.0.0.0x1", "1.2.3",
     "0", "00", "255.255.255.255", "4294967295"],
)
def test_ipv4_literal_parsing_matches_inet_aton(text: str) -> None:
    expected = ipaddress.IPv4Address(socket.inet_aton(text))
    assert parse_ipv4_literal(text) == expected


@pytest.mark.parametrize("text", ["1.2.3.256", "08", "0x", "4294967296", "1..2", "1.2.3.4.5",
                                  "256.1", "1.16777216"])
def test_invalid_ipv4_literals(text: str) -> None:
    assert parse_ipv4_literal(text) is None
    assert check(f"http://{text}/", fetch=False).outcome == FAIL


# --- syntax, scheme, userinfo, look-alikes --------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "ftp://tiktok.com/x", "data:text/html,hi",
     "gopher://tiktok.com/", "//tiktok.com/x", "tiktok.com/x"],
)
def test_non_http_schemes_fail(url: str) -> None:
    result = check(url, fetch=False)
    assert result.outcome == FAIL and "only http and https" in result.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://user@tiktok.com/x",
        "https://user:pw@www.tiktok.com/x",
        "https://tiktok.com@evil.io/x",
        "https://@tiktok.com/x",
    ],
)
def test_userinfo_fails(url: str) -> None:
    result = check(url, fetch=False)
    assert result.outcome == FAIL and "user name or password" in result.detail


@pytest.mark.parametrize(
    "url",
    ["https://", "https:///tiktok.com/x", "https://tiktok.com:99999/", "https://tiktok.com:0/",
     "https://tiktok.com:+443/", "https://tik tok.com/", "https://tiktok.com\\@evil.io/",
     "https://tiktok..com/", "https://tik_tok.com/", "https://-tiktok.com/",
     "https://tiktok.com%2e/",
     "https://[fe80::1%25eth0]/", "https://xn--zz.tiktok.com/", "https://tiktok.com/" + "a" * 2100,
     "", None],
)
def test_malformed_urls_fail(url: str | None) -> None:
    assert check(url, fetch=False).outcome == FAIL


@pytest.mark.parametrize(
    "url",
    ["https://tiktok.com/x", "https://www.tiktok.com/x", "https://m.tiktok.com/x",
     "HTTPS://WWW.TikTok.COM./x", "https://ｔｉｋｔｏｋ.com/x", "https://vm.tiktok.com:443/x"],
)
def test_allowed_domains_and_subdomains_pass(url: str) -> None:
    assert check(url, fetch=False).outcome == PASS


@pytest.mark.parametrize(
    "url",
    ["https://tiktok.com.evil.io/x", "https://eviltiktok.com/x", "https://tiktok.co/x",
     "https://xn--tktok-n2e.com/x", "https://tіktok.com/x", "https://tiktok.com-evil.io/x",
     "https://wwwtiktok.com/x"],
)
def test_look_alike_domains_fail(url: str) -> None:
    result = check(url, fetch=False)
    assert result.outcome == FAIL and "is not one of the allowed domains" in result.detail


def test_host_is_allowed_normalises_the_allowed_list() -> None:
    assert host_is_allowed("www.tiktok.com", ["TikTok.com."])
    assert host_is_allowed("www.tiktok.com", ["*.tiktok.com"])
    assert host_is_allowed("xn--bcher-kva.de", ["bücher.de"])
    assert not host_is_allowed("tiktok.com", ["", "not a domain", "127.0.0.1"])


def test_empty_allowed_list_accepts_any_domain() -> None:
    assert check("https://example.org/x", allowed_domains=[], fetch=False).outcome == PASS


# --- content rule: tracked code or UTM ------------------------------------------------------

UTM = {"utm_source": "marketplace", "utm_campaign": "spring"}


@pytest.mark.parametrize(
    "url",
    ["https://www.tiktok.com/t/ABC123", "https://www.tiktok.com/@shop/video/1?ref=ABC123",
     "https://www.tiktok.com/x?r=%41BC123"],
)
def test_tracked_code_present(url: str) -> None:
    assert check(url, tracked_code="ABC123", fetch=False).outcome == PASS


@pytest.mark.parametrize(
    "url", ["https://www.tiktok.com/t/XYZ", "https://www.tiktok.com/x#ABC123",
            "https://abc123.tiktok.com/x"],
)
def test_a_url_without_the_code_is_not_judged_by_its_url(url: str) -> None:
    """A real post's URL never carries our code: unfetched, nobody can tell, so a person looks."""
    result = check(url, tracked_code="ABC123", fetch=False)
    assert result.outcome == WARN and "not fetched" in result.detail


def test_utm_parameters_present() -> None:
    url = "https://www.tiktok.com/x?utm_source=marketplace&utm_campaign=spring&utm_medium=social"
    assert check(url, required_utm=UTM, fetch=False).outcome == PASS
    assert check("https://www.tiktok.com/x?utm_source=anything",
                 required_utm=["utm_source"], fetch=False).outcome == PASS


def test_utm_parameters_missing_or_wrong_in_the_url_leave_it_to_the_page() -> None:
    for url in ("https://www.tiktok.com/x?utm_source=marketplace",
                "https://www.tiktok.com/x?utm_source=marketplace&utm_campaign=autumn",
                "https://www.tiktok.com/x?utm_source="):
        assert check(url, required_utm=UTM, fetch=False).outcome == WARN


def test_tracked_code_or_utm_either_satisfies() -> None:
    by_code = check("https://www.tiktok.com/t/ABC123", tracked_code="ABC123", required_utm=UTM,
                    fetch=False)
    by_utm = check("https://www.tiktok.com/x?utm_source=marketplace&utm_campaign=spring",
                   tracked_code="ABC123", required_utm=UTM, fetch=False)
    assert by_code.outcome == PASS and by_utm.outcome == PASS


def test_result_serialises() -> None:
    payload = check("https://www.tiktok.com/t/ABC123", tracked_code="ABC123", fetch=False).to_dict()
    assert payload["name"] == "link" and payload["data"]["host"] == "www.tiktok.com"


def test_a_socket_timeout_at_the_limit_is_the_deadline_even_before_its_guard_thread_runs() -> None:
    """On a busy machine the read times out (it was set to the time left) before the guard's
    timer thread marks the deadline passed: the clock says it passed all the same."""
    from marketplace.proofs.checks.link import _Deadline

    deadline = _Deadline(0.05)
    time.sleep(0.06)  # no guard was started: only the clock knows
    assert deadline.passed is False
    assert deadline.expired() is True
    assert _Deadline(5).expired() is False
