"""Fetching an image from a URL a member pasted, into the studio's storage.

The studio itself makes this request, so it must not become a way to reach what only
the studio can reach (SSRF): only http(s), only public addresses (every address the
host resolves to is checked, and again after each redirect, which is followed by
hand), a size limit, and a short timeout.
"""

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 10


class FetchRefused(ValueError):
    """The URL cannot be used; the message says why, for the member."""


def fetch_image_url(url):
    """The bytes behind `url`, or FetchRefused."""
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False,
                      headers={"User-Agent": "bria-studio/1.0"}) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise FetchRefused(f"The image URL answered HTTP {response.status_code}.")
                    return _read_limited(response)
            except httpx.HTTPError as exc:
                raise FetchRefused(f"The image URL could not be fetched ({type(exc).__name__}).") from None
    raise FetchRefused("The image URL redirects too many times.")


def check_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("Only http and https image URLs can be used.")
    if settings.FETCH_ALLOW_PRIVATE_ADDRESSES:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        raise FetchRefused(f"The host {parts.hostname!r} could not be found.") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise FetchRefused("The image URL points at a private or local address, which the studio does not fetch.")


def _read_limited(response):
    limit = settings.UPLOAD_MAX_BYTES
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchRefused(f"The image is larger than {limit // (1024 * 1024)} MB.")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchRefused(f"The image is larger than {limit // (1024 * 1024)} MB.")
        chunks.append(chunk)
    return b"".join(chunks)
