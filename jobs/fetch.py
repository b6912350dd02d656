"""Fetching an image from a URL a member pasted, into the studio's storage.

The studio itself makes this request, so it must not become a way to reach what only
the studio can reach (SSRF). A URL is used only if it is http(s), carries no user name
or password, and names its host plainly (a name, a dotted-decimal IPv4 or an IPv6
literal: never "2130706433", "0x7f.1" or "0177.0.0.1", which resolvers read as
127.0.0.1). Every connection then goes through one network backend that resolves the
host itself, once, refuses it unless every address is public, and connects to one of
exactly those addresses. The check and the connection therefore see the same DNS
answer: a name that answers public first and 127.0.0.1 a moment later (DNS rebinding)
cannot slip through between them. The URL is unchanged, so the Host header, TLS SNI and
certificate verification still use the host name. Redirects are followed by hand and
every hop goes through the same checks; the size, each read and the whole fetch are
bounded. FETCH_ALLOW_PRIVATE_ADDRESSES turns the address check off (private
deployments, tests with a local server); the URL checks stay.
"""

import ipaddress
import re
import socket
import time

import httpcore
import httpx
from django.conf import settings

MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 10
DEADLINE_SECONDS = 60
# A host resolving to more addresses than this is tried on the first few only.
MAX_ADDRESSES_TRIED = 3

# Bytes as sent: a compressed body would be inflated before the size limit sees it.
IMAGE_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity"}
PRIVATE = "The image URL points at a private or local address, which the studio does not fetch."
# IPv4-compatible (deprecated) addresses are refused outright; NAT64 ones are judged by
# the IPv4 address inside.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# How a resolver reads a host whose last label is a number: as an IPv4 address.
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class FetchRefused(ValueError):
    """The URL cannot be used; the message says why, for the member."""


def fetch_image_url(url):
    """The bytes behind `url`, or FetchRefused."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    with public_client() as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = check_form(url)
            try:
                with client.stream("GET", target, headers=IMAGE_HEADERS) as response:
                    if response.is_redirect:
                        url = target.join(response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise FetchRefused(f"The image URL answered HTTP {response.status_code}.")
                    return _read_limited(response, deadline)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise FetchRefused(f"The image URL could not be fetched ({type(exc).__name__}).") from None
    raise FetchRefused("The image URL redirects too many times.")


def public_client(timeout=TIMEOUT_SECONDS):
    """An httpx client that connects only to public addresses (see the module's
    docstring) and follows no redirects; a refused address raises FetchRefused from the
    request. For any request to a URL a user gave the studio."""
    return httpx.Client(transport=PublicTransport(), timeout=timeout, follow_redirects=False, trust_env=False,
                        headers={"User-Agent": "bria-studio/1.0"})


def check_url(url):
    """FetchRefused unless `url` is usable and its host resolves to public addresses
    only. A check ahead of time, for a clear early answer; the connection itself is
    pinned by `public_client`, which checks again."""
    target = check_form(url)
    public_addresses(target.raw_host.decode("ascii"), target.port or (443 if target.scheme == "https" else 80))


def check_form(url):
    """The URL as httpx will request it, or FetchRefused for one the studio does not use.
    It is parsed by httpx itself, so what is checked is what is requested."""
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchRefused("The image URL is not a valid URL.") from None
    if target.scheme not in ("http", "https"):
        raise FetchRefused("Only http and https image URLs can be used.")
    if not target.host:
        raise FetchRefused("The image URL has no host.")
    if target.userinfo:
        raise FetchRefused("Image URLs with a user name or password are not used.")
    if target.port is not None and not 0 < target.port < 65536:
        raise FetchRefused("The image URL's port is not valid.")
    if not _plainly_spelled(target.host):
        raise FetchRefused("The image URL's host must be a name or a plainly written IP address.")
    return target


def _plainly_spelled(host):
    if ":" in host or "%" in host:
        try:
            return "%" not in host and ipaddress.IPv6Address(host) is not None
        except ValueError:
            return False
    if NUMERIC_LABEL.match(host.removesuffix(".").rsplit(".", 1)[-1]):
        try:
            return str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            return False
    return True


def public_addresses(host, port):
    """Resolve `host` once: its addresses (as numeric strings, in the resolver's order),
    all of them public unless FETCH_ALLOW_PRIVATE_ADDRESSES, else FetchRefused."""
    try:
        addresses = list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        raise FetchRefused(f"The host {host!r} could not be found.")
    if not settings.FETCH_ALLOW_PRIVATE_ADDRESSES and not all(is_public(address) for address in addresses):
        raise FetchRefused(PRIVATE)
    return addresses


def is_public(address):
    """Globally routable unicast, including what an IPv6 address carries inside
    (::ffff:127.0.0.1 is 127.0.0.1; so are 2002:7f00:1:: and 64:ff9b::7f00:1)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6:
        if ip in IPV4_COMPATIBLE:
            return False
        inner = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if inner is not None and not is_public(str(inner)):
            return False
    return ip.is_global and not ip.is_multicast


class PublicAddressBackend(httpcore.SyncBackend):
    """httpcore's own backend, except that it resolves the host itself, checks every
    address, and hands the connect a numeric address (which is parsed, never looked
    up), so the socket goes where the check looked. The URL's port is the port
    connected to."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error = None
        for address in public_addresses(host, port)[:MAX_ADDRESSES_TRIED]:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class PublicTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through
    PublicAddressBackend. httpx takes no network backend, so the pool it built is
    replaced by one made with httpcore's public constructor; TLS (SNI and certificate
    verification against the host name) and everything else are unchanged. No proxy is
    ever used: a proxy would make the connection instead of this backend."""

    def __init__(self):
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=PublicAddressBackend())


def _read_limited(response, deadline):
    limit = settings.UPLOAD_MAX_BYTES
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchRefused(f"The image is larger than {limit // (1024 * 1024)} MB.")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchRefused(f"The image is larger than {limit // (1024 * 1024)} MB.")
        if time.monotonic() > deadline:
            raise FetchRefused(f"The image URL took longer than {DEADLINE_SECONDS} seconds to send the image.")
        chunks.append(chunk)
    return b"".join(chunks)
