"""Outbound HTTP to user-supplied URLs (webhooks, Slack), safe against server-side request forgery.

A URL given by a tenant must not make csm talk to its own network: every request resolves the host
name, refuses any address that is not globally routable (loopback, private, link-local — which
includes the cloud metadata address 169.254.169.254 — shared, multicast, reserved, unspecified,
IPv4-mapped forms of those) and then connects to exactly the address it checked, so a DNS answer
that changes between the check and the connection ("DNS rebinding") cannot slip through.
Redirects are never followed and every request has a timeout.

``CSM_WEBHOOK_ALLOW_PRIVATE=1`` lifts the address check (an operator's decision, e.g. for a receiver
on the same host); the address is still pinned.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


class OutboundRefused(Exception):
    """The URL may not be called: bad scheme, unresolvable host, or a non-public address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict
    latency_ms: int


WEBHOOK_PRIVATE_SETTING = "CSM_WEBHOOK_ALLOW_PRIVATE"


def _allow_private(setting: str) -> bool:
    return bool(getattr(settings, setting, False))


def address_refusal(address: str) -> str | None:
    """Why ``address`` may not be contacted, or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives here)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def resolve(url: str, private_setting: str = WEBHOOK_PRIVATE_SETTING) -> Target:
    """Parse and resolve ``url``; raise OutboundRefused unless it may be called now. ``private_setting``
    names the operator's boolean setting that lifts the address check for this kind of request (the
    journal's TSA has its own, so allowing a local TSA does not open webhooks to the local network)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"Malformed URL: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("Only http:// and https:// URLs are allowed.")
    host = parts.hostname
    if not host:
        raise OutboundRefused("The URL has no host.")
    if parts.username or parts.password:
        raise OutboundRefused("Credentials in the URL are not allowed.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused(f"The host {host!r} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise OutboundRefused(f"The host {host!r} does not resolve.")
    if not _allow_private(private_setting):
        # Every answer must be public: an attacker controlling DNS could otherwise mix one private
        # address in and hope the client picks it.
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise OutboundRefused(f"The host {host!r} resolves to {address}, {reason}; refused. To deliver "
                                      f"to a receiver on your own network, the operator can set "
                                      f"{private_setting}=1.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI are checked against the URL's host name, not the pinned address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _request(method: str, url: str, body: bytes | None, headers: dict, timeout: float, private_setting: str,
             max_bytes: int, user_agent: str) -> Response:
    """One request after re-checking the URL's resolution, to the pinned address; never follows redirects."""
    target = resolve(url, private_setting)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    started = time.monotonic()
    try:
        connection.request(method, target.path, body=body, headers={"User-Agent": user_agent, **headers})
        response = connection.getresponse()
        data = response.read(max_bytes)
        return Response(
            status=response.status,
            body=data,
            headers={key.lower(): value for key, value in response.getheaders()},
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    finally:
        connection.close()


def post(url: str, body: bytes, headers: dict, timeout: float = DEFAULT_TIMEOUT_SECONDS,
         private_setting: str = WEBHOOK_PRIVATE_SETTING) -> Response:
    """POST ``body`` to ``url`` after re-checking its resolution; never follows redirects.

    Raises OutboundRefused for a refused URL and OSError / http.client.HTTPException for network
    failures (the caller records them as a failed attempt)."""
    return _request("POST", url, body, headers, timeout, private_setting, MAX_RESPONSE_BYTES, "csm-webhooks/1")


def get(url: str, headers: dict | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
        private_setting: str = WEBHOOK_PRIVATE_SETTING, max_bytes: int = MAX_RESPONSE_BYTES) -> Response:
    """GET ``url`` after the same resolution check and address pinning as ``post`` (an IdP's discovery
    document, its JWKS); never follows redirects; at most ``max_bytes`` of the body are read.

    Raises OutboundRefused for a refused URL and OSError / http.client.HTTPException for network failures."""
    return _request("GET", url, None, headers or {}, timeout, private_setting, max_bytes, "csm/1")


class ResponseTooLarge(Exception):
    """The response body is larger than the caller allows (announced by Content-Length, or streamed)."""


@dataclass(frozen=True)
class Download:
    status: int
    headers: dict
    size: int


def download(url: str, dest, *, max_bytes: int, headers: dict | None = None,
             timeout: float = DEFAULT_TIMEOUT_SECONDS, private_setting: str = WEBHOOK_PRIVATE_SETTING,
             chunk_size: int = 1024 * 1024, progress=None) -> Download:
    """GET ``url`` into the binary file object ``dest`` (a 200's body; nothing for other statuses), after the
    same resolution check and address pinning as ``post``; never follows redirects. The body is streamed:
    at most ``max_bytes`` are read, beyond that (or a larger Content-Length) raises ResponseTooLarge.
    Conditional headers (If-None-Match, If-Modified-Since) pass through, so a 304 costs no body.
    ``progress(bytes so far)``, when given, is called after every chunk (a long download keeps its lock).

    Raises OutboundRefused for a refused URL and OSError / http.client.HTTPException for network failures."""
    target = resolve(url, private_setting)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("GET", target.path, headers={"User-Agent": "csm/1", **(headers or {})})
        response = connection.getresponse()
        response_headers = {key.lower(): value for key, value in response.getheaders()}
        size = 0
        if response.status == 200:
            announced = response_headers.get("content-length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                raise ResponseTooLarge(f"the server announces {announced} bytes, more than the {max_bytes} allowed")
            while chunk := response.read(chunk_size):
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLarge(f"the body exceeds the {max_bytes} bytes allowed")
                dest.write(chunk)
                if progress is not None:
                    progress(size)
        return Download(status=response.status, headers=response_headers, size=size)
    finally:
        connection.close()
