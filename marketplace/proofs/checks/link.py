"""Link proofs: strict URL parsing, allowed domains, SSRF-safe fetching, and the tracked link in the post.

What a link proves: the worker's post *carries* the task's tracked link. A real post's URL
(https://www.instagram.com/p/CzTrail123/) never carries our code; the post's page does. So the
page is fetched and its HTML (up to ``max_body``) searched for the tracked code (which the
tracked link contains) or the required UTM parameters; a URL that itself carries them passes too.

Decisions this module makes (the brief left them open):

* The allowed-domain rule applies to the URL the worker submitted, not to where it redirects:
  shorteners legitimately redirect elsewhere, and the submitted URL is what gets shared. The
  page searched is the last one, after the redirects.
* It fails only for what is surely wrong: not http(s), a domain not allowed, a hostile address,
  a post that is gone (404/410), or a page that was read whole as HTML without the link. What
  cannot be read (a login wall, 401/403/429, any other 4xx, a 5xx, a timeout, a page that is not
  HTML, a page longer than what is read) warns, and a person looks.
* Redirect hops may leave the allowed domains, but every hop is re-parsed (http/https
  only, no userinfo) and every address it resolves to is re-vetted before connecting.
* A literal IP address is never accepted as the submitted link's host ("links must use a
  domain name"), whatever the allowed list says; an empty allowed list means "any domain".
* Each hop resolves its name exactly once and connects to a vetted address itself (the
  connection is pinned), so DNS rebinding between the check and the connect cannot happen.
* Outcome of the fetch: a 404 or 410 fails; any other 4xx, a 5xx (the site's own trouble) and a
  redirect to an app link (snssdk1233:, intent:, …) warn; too many redirects and unsafe hops
  fail; network trouble (DNS, refused, timeout, TLS) warns. A 2xx is then judged by its page.
* ``read_timeout`` bounds each socket read; ``total_timeout`` bounds the whole probe, every
  hop included, so a server that drips a byte at a time cannot hold a validation worker for
  longer (the watchdog shuts the socket down, which ends any read blocked on it). Only the
  name lookup is outside it: getaddrinfo cannot be interrupted, and the resolver's own
  timeouts bound it.
"""

from __future__ import annotations

import html
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urljoin, urlsplit

from . import FAIL, PASS, WARN, CheckResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[Any]]

MAX_URL_LENGTH = 2048
# Where a task's tracked link must appear, as the worker is told on the task.
LINK_PLACEMENT = ("Put your tracked link (or its code) in the post itself: its caption, description or a link "
                  "in it. Then submit the post's own URL; we open the post and look for the link there.")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
GONE_STATUSES = frozenset({404, 410})
_PASSWORD_FIELD = re.compile(r"<input[^>]*type\s*=\s*[\"']?password", re.IGNORECASE)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "marketplace-link-check/1.0"
# Redirects to these fail like any unacceptable URL; other non-http schemes are app links (warn).
NEVER_FOLLOWED_SCHEMES = frozenset({"", "javascript", "data", "vbscript", "file", "ftp", "blob", "about"})

# --- forbidden addresses -------------------------------------------------------------------

# Cloud instance-metadata endpoints: refused even when private addresses are allowed.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)

# (network, reason, relaxed by allow_private). First match wins.
_V4_RULES = [
    (ipaddress.ip_network(net), reason, relaxable)
    for net, reason, relaxable in (
        ("0.0.0.0/8", "unspecified ('this network')", False),
        ("10.0.0.0/8", "private", True),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)", True),
        ("127.0.0.0/8", "loopback", True),
        ("169.254.0.0/16", "link-local", False),
        ("172.16.0.0/12", "private", True),
        ("192.0.0.0/24", "IETF protocol assignment (reserved)", False),
        ("192.0.2.0/24", "documentation (reserved)", False),
        ("192.88.99.0/24", "6to4 relay anycast (reserved)", False),
        ("192.168.0.0/16", "private", True),
        ("198.18.0.0/15", "benchmarking (reserved)", False),
        ("198.51.100.0/24", "documentation (reserved)", False),
        ("203.0.113.0/24", "documentation (reserved)", False),
        ("224.0.0.0/4", "multicast", False),
        ("240.0.0.0/4", "reserved", False),  # includes the broadcast address
    )
]
_V6_RULES = [
    (ipaddress.ip_network(net), reason, relaxable)
    for net, reason, relaxable in (
        ("::/128", "unspecified", False),
        ("::1/128", "loopback", True),
        ("64:ff9b:1::/48", "local-use NAT64", False),
        ("100::/64", "discard-only (reserved)", False),
        ("2001::/23", "IETF special-purpose (reserved)", False),  # Teredo, ORCHID, ...
        ("2001:db8::/32", "documentation (reserved)", False),
        ("3fff::/20", "documentation (reserved)", False),
        ("fc00::/7", "unique-local", True),
        ("fe80::/10", "link-local", False),
        ("fec0::/10", "site-local (deprecated)", False),
        ("ff00::/8", "multicast", False),
    )
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _classify(ip: IPAddress) -> tuple[str, bool] | None:
    """(reason, relaxed by allow_private) when ip must not be connected to, else None."""
    if ip in _METADATA:
        return "cloud metadata", False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(int(ip))  # the zone does not change what it is
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, v4 = embedded
            inner = _classify(v4)
            if inner is not None:
                return f"{form} {inner[0]}", inner[1]
            if form == "IPv4-compatible":  # deprecated form; nothing legitimate uses it
                return "IPv4-compatible (deprecated, reserved)", False
            return None
        rules = _V6_RULES
    else:
        rules = _V4_RULES
    for network, reason, relaxable in rules:
        if ip in network:
            return reason, relaxable
    # Belt and braces for whatever the tables miss (e.g. IPv6 outside 2000::/3).
    if ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "reserved", False
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_forbidden_address(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why connecting to ip is refused ("loopback", "IPv4-mapped private", ...), or None.

    Refused: loopback, private, shared (100.64/10), link-local, unique-local, multicast,
    reserved, unspecified, documentation/benchmark ranges, cloud metadata addresses, and
    IPv4-mapped/compatible, NAT64 and 6to4 forms embedding any of those. ``allow_private``
    (tests only) lets loopback/private/unique-local/shared through; the metadata
    addresses, link-local and the rest stay refused.
    """
    verdict = _classify(ip)
    if verdict is None:
        return None
    reason, relaxable = verdict
    if allow_private and relaxable:
        return None
    return reason


# --- strict URL parsing --------------------------------------------------------------------


class LinkRejected(ValueError):
    """The URL is unacceptable as a link (or as a redirect hop); ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ParsedLink:
    scheme: str  # "http" | "https"
    host: str  # IDNA ASCII, lower-case, no trailing dot; or an IP's canonical text
    port: int
    ip: IPAddress | None  # set when the host is a literal address (in any spelling)
    path: str  # raw path, "" when absent
    query: str  # raw query, "" when absent

    @property
    def target(self) -> str:
        """Request target: path and query, non-ASCII percent-encoded, existing escapes kept."""
        path = quote(self.path or "/", safe="/%:@!$&'()*+,;=-._~")
        query = quote(self.query, safe="/?%:@!$&'()*+,;=-._~")
        return f"{path}?{query}" if query else path

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """Normalised URL (fragment dropped: it never reaches the server)."""
        return f"{self.scheme}://{self.host_header}{self.target}"


_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 host in any spelling ``inet_aton`` accepts, else None.

    1 to 4 dot-separated parts; each decimal, octal (leading 0) or hex (0x); the last
    part fills the remaining bytes: "2130706433", "0177.0.0.1", "0x7f.1" and "127.1" are
    all 127.0.0.1. Implemented here rather than by calling socket.inet_aton because
    libc versions differ (glibc accepts trailing junk after a space).
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", part):
            numbers.append(int(part[2:], 16))
        elif re.fullmatch(r"0[0-7]*", part):
            numbers.append(int(part, 8))
        elif re.fullmatch(r"[1-9][0-9]*", part):
            numbers.append(int(part))
        else:
            return None
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for index, n in enumerate(leading):
        value |= n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def normalise_host(host: str) -> tuple[str, IPAddress | None]:
    """(ASCII host, literal IP or None); raises LinkRejected for anything malformed.

    IDNA (2003, the stdlib codec) maps Unicode and full-width forms to ASCII; homoglyph
    hosts become distinct ``xn--`` names that simply do not equal an allowed domain.
    """
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise LinkRejected("the link has no host")
    if ":" in host:  # only an IPv6 literal carries colons here
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise LinkRejected("the link's host is not a valid address") from None
        if ip6.scope_id:
            raise LinkRejected("the link's host is not a valid address")
        return ip6.compressed, ip6
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise LinkRejected("the link's host name is not valid") from None
    labels = ascii_host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        ip4 = parse_ipv4_literal(ascii_host)
        if ip4 is None:
            raise LinkRejected("the link's host is not a valid address")
        return str(ip4), ip4
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise LinkRejected("the link's host name is not valid")
    for label in labels:
        if label.startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                raise LinkRejected("the link's host name is not valid") from None
    return ascii_host, None


def parse_link(url: str) -> ParsedLink:
    """Strict parse of an http(s) URL; raises LinkRejected with a worker-facing detail."""
    if not isinstance(url, str) or not url.strip():
        raise LinkRejected("no link was given")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise LinkRejected(f"the link is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        # Browsers and servers disagree about these; refusing is the only safe reading.
        raise LinkRejected("the link contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise LinkRejected("the link is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise LinkRejected("only http and https links are accepted")
    if "@" in parts.netloc:
        raise LinkRejected("links with a user name or password (user@host) are not accepted")
    if not parts.netloc:
        raise LinkRejected("the link has no host")
    try:
        port = parts.port
        raw_host = parts.hostname
    except ValueError:
        raise LinkRejected("the link's host or port is not valid") from None
    if not raw_host:
        raise LinkRejected("the link has no host")
    if port is None:
        port = 443 if scheme == "https" else 80
    elif not 0 < port < 65536:
        raise LinkRejected("the link's port is not valid")
    host, ip = normalise_host(raw_host)
    return ParsedLink(scheme, host, port, ip, parts.path, parts.query)


def host_is_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """Exact match or a subdomain of an allowed domain, on normalised ASCII names.

    "www.tiktok.com" is allowed for "tiktok.com"; "eviltiktok.com" and
    "tiktok.com.evil.io" are not. Malformed entries in the allowed list are ignored.
    """
    for domain in allowed_domains:
        domain = domain.strip().lstrip("*").lstrip(".")
        try:
            allowed, ip = normalise_host(domain)
        except LinkRejected:
            continue
        if ip is None and (host == allowed or host.endswith("." + allowed)):
            return True
    return False


# --- content rule: tracked code or UTM parameters --------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """What the post must carry: the tracked code, or every required UTM parameter (None: any value)."""

    code: str
    utm: dict[str, str | None]

    @classmethod
    def of(cls, tracked_code: str | None, required_utm: dict[str, str] | list[str] | None) -> Wanted | None:
        utm = dict(required_utm) if isinstance(required_utm, dict) else dict.fromkeys(required_utm or [])
        code = (tracked_code or "").strip()
        return cls(code, utm) if code or utm else None

    def describe(self) -> str:
        if self.code and self.utm:
            return f"the tracked link (code {self.code!r}) or the required UTM parameters"
        if self.code:
            return f"the tracked link (code {self.code!r})"
        return f"the required UTM parameters ({', '.join(self.utm)})"

    def carried_by_url(self, link: ParsedLink) -> bool:
        """Whether the URL itself carries the code (path or query, raw or percent-decoded) or
        every required UTM parameter in its query (a fragment never reaches a server)."""
        path_query = f"{link.path}?{link.query}"
        if self.code and (self.code in path_query or self.code in unquote(path_query)):
            return True
        if not self.utm:
            return False
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(link.query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        return all(any(params.get(key, [])) and (wanted is None or wanted in params[key])
                   for key, wanted in self.utm.items())

    def found_in(self, page: str) -> bool:
        """Whether the page's text (entities decoded, and percent-decoded too) carries it."""
        readings = (page, unquote(page))
        if self.code and any(self.code in text for text in readings):
            return True
        if not self.utm:
            return False
        for key, value in self.utm.items():
            pattern = re.escape(key) + "=" + (re.escape(value) + r"(?![\w.~-])" if value else r"[^&\"'\s<>]+")
            if not any(re.search(pattern, text) for text in readings):
                return False
        return True


# --- the probe -------------------------------------------------------------------------------


class _Refused(Exception):
    """A hop is unsafe or invalid: the check fails."""


class _Unreachable(Exception):
    """Network trouble: the check warns."""


def _open_socket(address: IPAddress, port: int, timeout: float) -> socket.socket:
    """TCP connection to exactly this (already vetted) address; never resolves a name."""
    family = socket.AF_INET6 if isinstance(address, ipaddress.IPv6Address) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Default context: certificate verification and hostname checking on.
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a vetted address; ``host`` is only used for the Host header."""

    def __init__(
        self, host: str, port: int, *, address: IPAddress, connect_timeout: float,
        read_timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self._address = address
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    def connect(self) -> None:
        self.sock = _open_socket(self._address, self.port, self._connect_timeout)
        self.sock.settimeout(self._read_timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address, with SNI and certificate checks on the host name."""

    def __init__(
        self, host: str, port: int, *, address: IPAddress, connect_timeout: float,
        read_timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout, context=_tls_context())
        self._address = address
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    def connect(self) -> None:
        raw = _open_socket(self._address, self.port, self._connect_timeout)
        try:
            self.sock = _tls_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(self._read_timeout)


def _resolved_addresses(entries: Iterable[Any]) -> list[IPAddress]:
    """Addresses from a resolver answer: getaddrinfo tuples, strings or ip_address objects."""
    addresses: list[IPAddress] = []
    for entry in entries:
        if isinstance(entry, ipaddress.IPv4Address | ipaddress.IPv6Address):
            ip = entry
        else:
            text = entry[4][0] if isinstance(entry, tuple) else entry
            ip = ipaddress.ip_address(str(text).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _connectable(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _default_resolver(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


def _vetted_addresses(
    link: ParsedLink, resolver: Resolver, allow_private: bool
) -> list[IPAddress]:
    if link.ip is not None:
        addresses = [link.ip]
    else:
        try:
            addresses = _resolved_addresses(resolver(link.host, link.port))
        except (OSError, UnicodeError) as exc:
            raise _Unreachable(f"could not resolve {link.host} ({_describe(exc)})") from None
        except Exception:
            raise _Unreachable(f"could not resolve {link.host}") from None
        if not addresses:
            raise _Unreachable(f"could not resolve {link.host} (no addresses)")
    # Every address must be safe, not just the first: the connect may use any of them,
    # and a mixed public/private answer is itself a sign of a hostile zone.
    for ip in addresses:
        reason = is_forbidden_address(ip, allow_private=allow_private)
        if reason is not None:
            if link.ip is not None:
                raise _Refused(f"{ip} is a forbidden address ({reason})")
            raise _Refused(f"{link.host} resolves to a forbidden address {ip} ({reason})")
    return addresses


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate problem: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return "name not found"
    return type(exc).__name__


@dataclass
class _Answer:
    status: int
    location: str | None
    bytes_read: int
    address: str
    content_type: str = ""
    body: bytes = b""
    truncated: bool = False  # the page was longer than what was read


class _Deadline:
    """The probe's overall time limit: `remaining()` for each hop's timeouts, and `guard(conn)`
    to shut a connection's socket down when the limit passes, mid-read or not."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.passed = False

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            self.passed = True
            raise _Unreachable(f"the probe took longer than {self.seconds:g} s")
        return left

    def guard(self, conn: http.client.HTTPConnection) -> threading.Timer:
        def expire() -> None:
            self.passed = True
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed

        timer = threading.Timer(max(self.at - time.monotonic(), 0), expire)
        timer.daemon = True
        timer.start()
        return timer

    def expired(self) -> bool:
        """Whether the limit has passed, by the clock as well as by the guard: a socket timeout set
        to the time left fires at the limit, and on a busy machine before the guard's thread runs."""
        if not self.passed and time.monotonic() >= self.at - 0.01:
            self.passed = True
        return self.passed


def _request(
    link: ParsedLink, addresses: list[IPAddress], *, connect_timeout: float,
    read_timeout: float, max_body: int, deadline: _Deadline,
) -> _Answer:
    connection_class = (
        _PinnedHTTPSConnection if link.scheme == "https" else _PinnedHTTPConnection
    )
    last_error: BaseException | None = None
    for ip in addresses:
        address = _connectable(ip)
        left = deadline.remaining()
        conn = connection_class(
            link.host, link.port, address=address, connect_timeout=min(connect_timeout, left),
            read_timeout=min(read_timeout, left),
        )
        watchdog = deadline.guard(conn)
        try:
            try:
                conn.connect()
            except OSError as exc:  # try the next vetted address
                last_error = exc
                continue
            conn.putrequest("GET", link.target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", link.host_header)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Accept", "*/*")
            conn.putheader("Accept-Encoding", "identity")
            conn.putheader("Connection", "close")
            conn.endheaders()
            response = conn.getresponse()
            if deadline.passed:  # a shut-down socket reads as the end of the headers: no answer
                raise OSError("deadline")
            body, truncated = b"", False
            try:
                body = response.read(max_body + 1)
                truncated = len(body) > max_body
                body = body[:max_body]
            except (OSError, http.client.HTTPException):
                truncated = True  # a body cut short: whatever it lacks may be in the rest
            return _Answer(response.status, response.getheader("Location"), len(body), str(address),
                           response.getheader("Content-Type") or "", body, truncated)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired():
                raise _Unreachable(f"{link.host} did not answer within the probe's "
                                   f"{deadline.seconds:g} s") from None
            raise _Unreachable(f"{link.host} did not answer ({_describe(exc)})") from None
        finally:
            watchdog.cancel()
            conn.close()
    detail = _describe(last_error) if last_error else "no address"
    raise _Unreachable(f"could not connect to {link.host} ({detail})")


def _page_verdict(answer: _Answer, wanted: Wanted, max_body: int, final: dict[str, Any]) -> CheckResult:
    """A 2xx page: does it carry what the post must carry?"""
    media_type = answer.content_type.split(";")[0].strip().lower()
    if media_type not in HTML_TYPES:
        return CheckResult("link", WARN, f"the post's page is not HTML ({media_type or 'no content type'}), so "
                           f"it could not be searched for {wanted.describe()}; a reviewer should look", final)
    charset = re.search(r"charset=[\"']?([\w-]+)", answer.content_type, re.IGNORECASE)
    try:
        text = answer.body.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = answer.body.decode("utf-8", errors="replace")
    if wanted.found_in(html.unescape(text)):
        return CheckResult("link", PASS, f"the post carries {wanted.describe()}", final)
    if _PASSWORD_FIELD.search(text):
        return CheckResult("link", WARN, "the post's page asks to log in, so it could not be searched for "
                           f"{wanted.describe()}; a reviewer should look", final)
    if answer.truncated:
        return CheckResult("link", WARN, f"the first {max_body // 1024} KB of the post's page do not carry "
                           f"{wanted.describe()} and the rest was not read; a reviewer should look", final)
    return CheckResult("link", FAIL, f"the post's page does not carry {wanted.describe()}: put the tracked "
                       "link in the post itself", final)


def _probe(
    link: ParsedLink, *, resolver: Resolver, allow_private: bool, connect_timeout: float,
    read_timeout: float, total_timeout: float, max_redirects: int, max_body: int,
    wanted: Wanted | None = None,
) -> CheckResult:
    """Fetch the link (every hop vetted and pinned) and judge the answer; with `wanted`, the
    final page must carry it."""
    deadline = _Deadline(total_timeout)
    hops: list[dict[str, Any]] = []
    current = link
    while True:
        data: dict[str, Any] = {"url": link.url, "hops": hops}
        try:
            addresses = _vetted_addresses(current, resolver, allow_private)
            answer = _request(
                current, addresses, connect_timeout=connect_timeout,
                read_timeout=read_timeout, max_body=max_body, deadline=deadline,
            )
        except _Refused as refused:
            via = f"link redirects to {current.url}: " if hops else ""
            return CheckResult("link", FAIL, f"{via}{refused}; refused",
                               {**data, "final_url": current.url})
        except _Unreachable as unreachable:
            return CheckResult("link", WARN, f"link could not be checked: {unreachable}",
                               {**data, "final_url": current.url})
        hops.append({
            "url": current.url, "status": answer.status, "address": answer.address,
            "bytes_read": answer.bytes_read,
        })
        if answer.status in REDIRECT_STATUSES and answer.location:
            if len(hops) > max_redirects:
                return CheckResult(
                    "link", FAIL, f"link redirects more than {max_redirects} times",
                    {**data, "final_url": current.url, "status": answer.status},
                )
            target = urljoin(current.url, answer.location)
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https", *NEVER_FOLLOWED_SCHEMES):
                # An app link (snssdk1233://…, intent://…): the site answered, but it cannot be followed.
                return CheckResult(
                    "link", WARN, f"link redirects to a {scheme}: address that cannot be followed; "
                    "a reviewer should look", {**data, "final_url": current.url, "status": answer.status,
                                               "location": target[:MAX_URL_LENGTH]},
                )
            try:
                current = parse_link(target)
            except LinkRejected as bad:
                return CheckResult(
                    "link", FAIL, f"link redirects to an unacceptable URL: {bad.detail}",
                    {**data, "final_url": current.url, "status": answer.status},
                )
            continue
        final = {**data, "final_url": current.url, "status": answer.status}
        if answer.status in GONE_STATUSES:
            return CheckResult("link", FAIL, f"link answered {answer.status}: the post is not there", final)
        if answer.status == 429:
            return CheckResult(
                "link", WARN, "link answered 429 (rate limited); a reviewer should look", final
            )
        if answer.status in (401, 403):
            return CheckResult("link", WARN, f"link answered {answer.status} (the page wants a login or refuses "
                               "robots); a reviewer should look", final)
        if answer.status >= 500:
            # The site's own trouble (down, overloaded), which says nothing about the link.
            return CheckResult("link", WARN, f"link answered {answer.status} (a server error); "
                               "a reviewer should look", final)
        if answer.status >= 300 or answer.status < 200:
            return CheckResult("link", WARN, f"link answered {answer.status}; a reviewer should look", final)
        if wanted is not None:
            return _page_verdict(answer, wanted, max_body, final)
        return CheckResult("link", PASS, f"link reachable (answered {answer.status})", final)


def link_check(
    url: str,
    *,
    allowed_domains: list[str],
    tracked_code: str | None,
    required_utm: dict[str, str] | list[str] | None,
    fetch: bool = True,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 5.0,
    total_timeout: float = 15.0,
    max_redirects: int = 3,
    max_body: int = 1024 * 1024,
) -> CheckResult:
    """Judge a submitted link: syntax, allowed domain, then the post it points to, which must carry
    the tracked code or the required UTM parameters (or the URL itself carries them).

    ``resolver(host, port)`` returns getaddrinfo-style tuples, address strings or
    ipaddress objects (default: socket.getaddrinfo). ``allow_private`` mirrors the
    LINK_CHECK_ALLOW_PRIVATE setting and exists for tests against local servers.
    Never raises: every problem is a fail or a warn result.
    """
    try:
        link = parse_link(url)
    except LinkRejected as bad:
        return CheckResult("link", FAIL, bad.detail, {"url": url if isinstance(url, str) else None})
    data: dict[str, Any] = {"url": link.url, "host": link.host}
    if link.ip is not None:
        return CheckResult(
            "link", FAIL, f"links must use a domain name, not an IP address ({link.ip})",
            {**data, "address": str(link.ip)},
        )
    if allowed_domains and not host_is_allowed(link.host, allowed_domains):
        return CheckResult(
            "link", FAIL,
            f"{link.host} is not one of the allowed domains ({', '.join(allowed_domains)})",
            data,
        )
    # The URL carrying the code or parameters is enough; otherwise the post's page must.
    wanted = Wanted.of(tracked_code, required_utm)
    if wanted is not None and wanted.carried_by_url(link):
        wanted = None
    if not fetch:
        if wanted is not None:
            return CheckResult("link", WARN, f"the post was not fetched, so it is not known whether it carries "
                               f"{wanted.describe()}; a reviewer should look", data)
        return CheckResult(
            "link", PASS, "link format, domain and tracking are fine (not fetched)", data
        )
    try:
        result = _probe(
            link, resolver=resolver or _default_resolver, allow_private=allow_private,
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            total_timeout=total_timeout, max_redirects=max_redirects, max_body=max_body,
            wanted=wanted,
        )
    except Exception as exc:  # the boundary: a bug or surprise here must not kill the job
        return CheckResult("link", WARN, f"link could not be checked ({type(exc).__name__})", data)
    return CheckResult(result.name, result.outcome, result.detail, {**data, **result.data})


@dataclass(frozen=True)
class Delivered:
    """What one SSRF-safe POST got: the status (None when no answer came), and why not, if not."""

    status: int | None
    error: str | None


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool = False,
         timeout: float = 10.0, resolver: Resolver | None = None) -> Delivered:
    """POST `body` to `url` through the same vetted, pinned connection the link check fetches
    with (outbound webhooks use it): the name is resolved once, every address vetted (loopback,
    private, link-local and metadata refused unless `allow_private`), the connect pinned to a
    vetted address. A redirect is never followed (it is an answer like any other, not a 2xx).
    `timeout` bounds the whole attempt, so a hanging receiver holds nobody longer. Never raises."""
    try:
        link = parse_link(url)
    except LinkRejected as bad:
        return Delivered(None, f"unacceptable URL: {bad.detail}")
    deadline = _Deadline(timeout)
    try:
        addresses = _vetted_addresses(link, resolver or _default_resolver, allow_private)
        connection_class = _PinnedHTTPSConnection if link.scheme == "https" else _PinnedHTTPConnection
        conn = connection_class(link.host, link.port, address=_connectable(addresses[0]),
                                connect_timeout=deadline.remaining(), read_timeout=deadline.remaining())
        watchdog = deadline.guard(conn)
        try:
            conn.putrequest("POST", link.target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", link.host_header)
            conn.putheader("User-Agent", "marketplace-webhooks/1.0")
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body)
            response = conn.getresponse()
            if deadline.passed:
                raise OSError("deadline")
            response.read(64 * 1024)  # what the receiver says is not ours to keep
            return Delivered(response.status, None)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired():
                return Delivered(None, f"no answer within {timeout:g} s")
            return Delivered(None, f"{link.host} did not answer ({_describe(exc)})")
        finally:
            watchdog.cancel()
            conn.close()
    except _Refused as refused:
        return Delivered(None, f"{refused}; refused")
    except _Unreachable as unreachable:
        return Delivered(None, str(unreachable))
    except Exception as exc:  # the boundary: a surprise here must not kill the delivery job
        return Delivered(None, f"could not deliver ({type(exc).__name__})")


__all__ = [
    "Delivered",
    "post",
    "LINK_PLACEMENT",
    "MAX_URL_LENGTH",
    "Wanted",
    "LinkRejected",
    "ParsedLink",
    "host_is_allowed",
    "is_forbidden_address",
    "link_check",
    "normalise_host",
    "parse_ipv4_literal",
    "parse_link",
]
