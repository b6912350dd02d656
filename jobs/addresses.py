"""Which URLs and addresses the studio reaches for a user: the one place that decides it.

The studio itself requests a member's pasted image URL and calls an API client's
X-Webhook-URL, so neither may become a way to reach what only the studio can reach
(SSRF). A URL is used only if its scheme is allowed (http(s) for images; HTTPS for
callbacks unless API_ALLOW_HTTP_CALLBACKS), it carries no user name or password, and it
names its host plainly (a name, a dotted-decimal IPv4 or an IPv6 literal: never
"2130706433", "0x7f.1" or "0177.0.0.1", which resolvers read as 127.0.0.1); and its host
only if every address it resolves to is public (`is_public`).
FETCH_ALLOW_PRIVATE_ADDRESSES turns the address rule off (private deployments, tests
with a local server); the URL rules stay.

Two moments apply these rules. At submit, `check_url` judges a URL as the web process
reads it, so that one that can already be told unusable (its scheme, a private or local
address, a host that does not resolve) is refused with a 4xx saying why, before any
money is held; it needs no HTTP client, which a web process never loads. In the worker,
jobs/fetch.py judges it again as httpx will request it, and pins the connection to the
addresses it checked: that check is the one that protects, and what only shows then (a
name that resolves elsewhere by now, a refused connection, a 404, not an image) ends the
job in ERROR, without charge.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings

# What a refusal calls the URL, for the member reading it; the APIs name their field.
IMAGE_URL = "The image URL"
HTTP_SCHEMES = ("http", "https")
# IPv4-compatible (deprecated) addresses are refused outright; NAT64 ones are judged by
# the IPv4 address inside.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# How a resolver reads a host whose last label is a number: as an IPv4 address.
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class FetchRefused(ValueError):
    """The URL cannot be used; the message says why, for the member."""


def check_url(url, name=IMAGE_URL, schemes=HTTP_SCHEMES):
    """`url`, unless it is unusable or its host does not resolve to public addresses
    only: then FetchRefused, whose message starts with `name`. The early check, at
    submit; the worker's connection checks again (jobs/fetch.py)."""
    try:
        parts = urlsplit(url)
    except (TypeError, ValueError, AttributeError):
        raise FetchRefused(f"{name} is not a valid URL.") from None
    try:
        port = parts.port
    except ValueError:
        raise FetchRefused(f"{name} has a port that is not valid.") from None
    check_parts(parts.scheme, parts.hostname, parts.username is not None or parts.password is not None, port,
                name, schemes)
    public_addresses(parts.hostname, port or (443 if parts.scheme == "https" else 80), name)
    return url


def check_parts(scheme, host, has_userinfo, port, name=IMAGE_URL, schemes=HTTP_SCHEMES):
    """The URL rules, on a URL already taken apart: FetchRefused saying which is broken."""
    if scheme not in schemes:
        raise FetchRefused(f"{name} must be an {' or '.join(s.upper() for s in schemes)} URL.")
    if not host:
        raise FetchRefused(f"{name} has no host.")
    if has_userinfo:
        raise FetchRefused(f"{name} must not carry a user name or password.")
    if port is not None and not 0 < port < 65536:
        raise FetchRefused(f"{name} has a port that is not valid.")
    if not plainly_spelled(host):
        raise FetchRefused(f"{name} must name its host plainly: a name or a plainly written IP address.")


def plainly_spelled(host):
    if ":" in host or "%" in host:
        try:
            return "%" not in host and ipaddress.IPv6Address(host) is not None
        except ValueError:
            return False
    if any(c.isspace() for c in host):
        return False
    if NUMERIC_LABEL.match(host.removesuffix(".").rsplit(".", 1)[-1]):
        try:
            return str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            return False
    return True


def public_addresses(host, port, name=IMAGE_URL):
    """Resolve `host` once: its addresses (as numeric strings, in the resolver's order),
    all of them public unless FETCH_ALLOW_PRIVATE_ADDRESSES, else FetchRefused."""
    try:
        addresses = list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        raise FetchRefused(f"{name} names a host, {host!r}, that could not be found.")
    if not settings.FETCH_ALLOW_PRIVATE_ADDRESSES and not all(is_public(address) for address in addresses):
        raise FetchRefused(f"{name} points at a private or local address (private, loopback, link-local or "
                           "reserved), which the studio does not connect to.")
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
