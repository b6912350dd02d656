"""Fetching an image from a URL a member pasted, into the studio's storage, and the HTTP
client for any request to a URL a user gave the studio (client callbacks too).

The studio itself makes these requests, so they must not become a way to reach what
only the studio can reach (SSRF): jobs/addresses.py holds the rules. Here the URL is
judged as httpx will request it (parsed by httpx itself, so what is checked is what is
requested), and every connection goes through one network backend that resolves the
host itself, once, refuses it unless every address is public, and connects to one of
exactly those addresses. The check and the connection therefore see the same DNS
answer: a name that answers public first and 127.0.0.1 a moment later (DNS rebinding)
cannot slip through between them. The URL is unchanged, so the Host header, TLS SNI and
certificate verification still use the host name. Redirects are followed by hand and
every hop goes through the same checks; the size, each read and the whole fetch are
bounded. Only worker processes import this module (and httpx with it).
"""

import time

import httpcore
import httpx
from django.conf import settings

from jobs.addresses import HTTP_SCHEMES, IMAGE_URL, FetchRefused, check_parts, public_addresses

MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 10
DEADLINE_SECONDS = 60
# A host resolving to more addresses than this is tried on the first few only.
MAX_ADDRESSES_TRIED = 3

# Bytes as sent: a compressed body would be inflated before the size limit sees it.
IMAGE_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity"}


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


def check_form(url, name=IMAGE_URL, schemes=HTTP_SCHEMES):
    """The URL as httpx will request it, or FetchRefused for one the studio does not use
    (jobs/addresses.py's rules, on httpx's reading of it)."""
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchRefused(f"{name} is not a valid URL.") from None
    check_parts(target.scheme, target.host, bool(target.userinfo), target.port, name, schemes)
    return target


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
