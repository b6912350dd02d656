"""The names the tests paste as ordinary public URLs, resolved without DNS.

The studio resolves the host of an image URL or a callback URL when it is submitted
(jobs/addresses.py: a host that does not resolve is refused at once), and the machines the
tests run on may have no DNS at all. These names resolve here to public addresses, as
they do on the internet; every other name goes to the system's resolver. Only the
resolver is replaced (socket.getaddrinfo), never the studio's code; nothing connects to
these addresses in a test.
"""

import socket

import pytest

PUBLIC_NAMES = {
    "example.com": "93.184.216.34",
    "storage.googleapis.com": "142.250.74.59",  # the seed document's example image
}


@pytest.fixture(autouse=True)
def public_names(monkeypatch):
    system = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in PUBLIC_NAMES:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_NAMES[host], port))]
        return system(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
