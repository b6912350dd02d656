"""Fetching pasted image URLs without becoming a way into the studio's network (SSRF):
the URL checks, the address checks, and real HTTP(S) against local servers — redirects
re-checked on every hop, and DNS rebinding defeated because the connection goes to the
address that was checked.

A "public" host here is a name that a fake resolver (socket.getaddrinfo, patched: the
resolver, not the studio's code) answers with a public address, 93.184.216.34; the
connection to that address is then carried to a local server (socket.create_connection,
patched), which plays the public web site. Every such connection is recorded, so a test
sees exactly where the studio connected."""

import http.server
import io
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from PIL import Image

from jobs import fetch, tasks
from jobs.actions import start_rmbg_from_url
from jobs.addresses import FetchRefused, check_url, is_public
from jobs.fetch import fetch_image_url
from jobs.models import Job
from studio.billing.models import Wallet
from studio.library.models import Asset

PUBLIC_IP = "93.184.216.34"
PRIVATE_ANSWERS = ["127.0.0.1", "10.0.0.5", "169.254.169.254", "100.64.0.1", "::1", "fd00::5", "::ffff:127.0.0.1"]


def png_bytes():
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = png_bytes()


# The fake network ---------------------------------------------------------------------

class Network:
    """A resolver with scripted answers and a record of every connection: `answers[name]`
    is a list of answers (each a list of addresses) given one per lookup, the last one
    repeated; a connection to an address in `routes` is carried to that local port."""

    def __init__(self, monkeypatch):
        self.answers, self.routes = {}, {}
        self.lookups, self.connections = [], []
        self._getaddrinfo, self._create_connection = socket.getaddrinfo, socket.create_connection
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", self.create_connection)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        if host not in self.answers:
            return self._getaddrinfo(host, port, family, type, proto, flags)
        self.lookups.append(host)
        script = self.answers[host]
        addresses = script.pop(0) if len(script) > 1 else script[0]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    def create_connection(self, address, *args, **kwargs):
        self.connections.append(address)
        if address[0] in self.routes:
            return self._create_connection(("127.0.0.1", self.routes[address[0]]), *args, **kwargs)
        return self._create_connection(address, *args, **kwargs)

    def public(self, name, server, *later_answers):
        """`name` resolves to the public address (then to `later_answers`, in turn), and
        connections to the public address reach `server`."""
        self.answers[name] = [[PUBLIC_IP], *later_answers]
        self.routes[PUBLIC_IP] = server.port


@pytest.fixture
def network(monkeypatch):
    return Network(monkeypatch)


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers from the server's routes: path → (status, headers, body) or a callable
    returning that; a body that is not bytes is an iterable of parts, sent one by one
    without a length (the connection's end ends it)."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        route = self.server.routes.get(self.path, (404, {}, b"not here"))
        status, headers, body = route() if callable(route) else route
        self.send_response(status)
        length = {"Content-Length": str(len(body))} if isinstance(body, bytes) else {}
        for name, value in {**length, **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for part in [body] if isinstance(body, bytes) else body:
                self.wfile.write(part)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the studio hung up, as it should

    def log_message(self, *args):
        pass


class Server:
    """A local HTTP(S) server on 127.0.0.1 that records what it was asked: (path, Host)."""

    def __init__(self, tls_context=None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.seen, self.httpd.routes = [], {"/image.png": (200, {"Content-Type": "image/png"}, PNG)}
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.seen, self.routes = self.httpd.seen, self.httpd.routes
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def redirect(self, path, location, status=302):
        self.routes[path] = (status, {"Location": location}, b"")

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def private_addresses_refused(settings):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = False


# The URL checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "must be an HTTP or HTTPS URL"),
    ("ftp://example.com/a.png", "must be an HTTP or HTTPS URL"),
    ("gopher://example.com:70/_GET", "must be an HTTP or HTTPS URL"),
    ("data:image/png;base64,iVBORw0KGgo=", "must be an HTTP or HTTPS URL"),
    ("javascript:alert(1)", "must be an HTTP or HTTPS URL"),
    ("http:///a.png", "no host"),
    ("http://user:secret@example.com/a.png", "user name or password"),
    ("http://example.com@127.0.0.1/a.png", "user name or password"),
    ("http://2130706433/", "plainly written"),
    ("http://0x7f000001/", "plainly written"),
    ("http://0x7f.1/", "plainly written"),
    ("http://0177.0.0.1/", "not a valid URL|plainly written"),  # httpx itself refuses leading zeros
    ("http://127.1/", "plainly written"),
    ("http://127.0.0.1./", "plainly written"),
    ("http://[fe80::1%25eth0]/", "plainly written"),
    ("http://example.com:99999/a.png", "port"),
    ("http://example.com:0/a.png", "port"),
    ("http://exa mple.com/a.png", "plainly written"),
    ("http://\u2460\u2461\u2466.0.0.1/", "not a valid URL|plainly written"),  # httpx: not IDNA
])
@pytest.mark.parametrize("allow_private", [False, True])
def test_unusable_urls_are_refused_whatever_the_address_policy(settings, url, reason, allow_private):
    """At submit (check_url, the web's reading) and when fetched (httpx's reading)."""
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = allow_private
    with pytest.raises(FetchRefused, match=reason):
        check_url(url)
    with pytest.raises(FetchRefused, match=reason):
        fetch_image_url(url)


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1", "100.127.255.254",  # CGNAT
    "192.0.0.1", "198.18.0.1", "240.0.0.1", "255.255.255.255", "224.0.0.1",
    "[::1]", "[::]", "[fe80::1]", "[fc00::1]", "[fd12:3456::1]", "[ff02::1]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "[::ffff:10.0.0.1]",
    "[::127.0.0.1]", "[2002:7f00:1::]", "[2002:a9fe:a9fe::]", "[64:ff9b::7f00:1]", "[2001:db8::1]",
    "localhost",
])
def test_private_and_local_addresses_are_refused(private_addresses_refused, host):
    with pytest.raises(FetchRefused, match="private or local address"):
        check_url(f"http://{host}/a.png")


@pytest.mark.parametrize("address", [PUBLIC_IP, "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808",
                                     "2002:808:808::1"])
def test_public_addresses_pass(address):
    assert is_public(address)


def test_a_public_address_with_any_port_passes(private_addresses_refused):
    check_url(f"http://{PUBLIC_IP}:8443/a.png")
    check_url("https://[2606:4700:4700::1111]/a.png")


@pytest.mark.parametrize("answer", [[ip] for ip in PRIVATE_ANSWERS] + [[PUBLIC_IP, "127.0.0.1"]])
def test_a_name_with_any_private_address_is_refused(private_addresses_refused, network, answer):
    network.answers["images.test"] = [answer]
    with pytest.raises(FetchRefused, match="private or local address"):
        check_url("https://images.test/a.png")


def test_an_unknown_host_is_refused(private_addresses_refused):
    with pytest.raises(FetchRefused, match="could not be found"):
        check_url("http://no-such-host.invalid/a.png")


def test_private_addresses_pass_when_the_deployment_allows_them(settings):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    check_url("http://127.0.0.1:9/a.png")
    check_url("http://[::1]/a.png")


# Real HTTP --------------------------------------------------------------------------------

def test_a_local_url_is_never_requested(private_addresses_refused, server):
    with pytest.raises(FetchRefused, match="private or local address"):
        fetch_image_url(f"http://127.0.0.1:{server.port}/image.png")
    assert server.seen == []


def test_a_public_image_is_fetched_with_its_own_host_header(private_addresses_refused, network, server):
    network.public("images.test", server)
    assert fetch_image_url(f"http://images.test:{server.port}/image.png") == PNG
    assert server.seen == [("/image.png", f"images.test:{server.port}")]
    assert network.connections == [(PUBLIC_IP, server.port)], "the URL's port, on the checked address"


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:{port}/image.png",
    "http://localhost:{port}/image.png",
    "http://[::1]:{port}/image.png",
    "http://2130706433:{port}/image.png",
    "http://[::ffff:127.0.0.1]:{port}/image.png",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
])
def test_a_redirect_to_a_local_url_is_refused(private_addresses_refused, network, server, location):
    network.public("images.test", server)
    server.redirect("/photo.jpg", location.format(port=server.port))
    with pytest.raises(FetchRefused):
        fetch_image_url(f"http://images.test:{server.port}/photo.jpg")
    assert server.seen == [("/photo.jpg", f"images.test:{server.port}")], "only the first hop was requested"
    assert network.connections == [(PUBLIC_IP, server.port)]


def test_a_local_server_redirecting_to_itself_is_refused_without_a_request(private_addresses_refused, server):
    server.redirect("/photo.jpg", f"http://127.0.0.1:{server.port}/image.png")
    with pytest.raises(FetchRefused, match="private or local address"):
        fetch_image_url(f"http://127.0.0.1:{server.port}/photo.jpg")
    assert server.seen == []


def test_redirects_are_followed_where_private_addresses_are_allowed(settings, server):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    server.redirect("/photo.jpg", "/moved.jpg", status=301)
    server.redirect("/moved.jpg", f"http://localhost:{server.port}/image.png", status=307)
    assert fetch_image_url(f"http://127.0.0.1:{server.port}/photo.jpg") == PNG
    assert [path for path, _ in server.seen] == ["/photo.jpg", "/moved.jpg", "/image.png"]


def test_a_redirect_loop_ends(settings, server):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    server.redirect("/loop.jpg", "/loop.jpg")
    with pytest.raises(FetchRefused, match="redirects too many times"):
        fetch_image_url(f"http://127.0.0.1:{server.port}/loop.jpg")
    assert len(server.seen) == fetch.MAX_REDIRECTS + 1


def test_an_error_answer_is_refused(settings, server):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(FetchRefused, match="answered HTTP 404"):
        fetch_image_url(f"http://127.0.0.1:{server.port}/missing.png")


def test_an_image_over_the_size_limit_is_refused_declared_or_not(settings, server):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    server.routes["/declared.png"] = (200, {"Content-Length": str(50 * 1024 * 1024)}, b"")
    server.routes["/streamed.png"] = lambda: (200, {}, (b"x" * 65536 for _ in range(20)))
    for path in ("/declared.png", "/streamed.png"):
        with pytest.raises(FetchRefused, match="larger than 1 MB"):
            fetch_image_url(f"http://127.0.0.1:{server.port}{path}")


def test_a_server_that_trickles_is_cut_off(settings, server, monkeypatch):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    monkeypatch.setattr(fetch, "DEADLINE_SECONDS", 0.3)

    def trickle():
        for _ in range(40):
            time.sleep(0.05)
            yield b"x"

    server.routes["/slow.png"] = lambda: (200, {"Content-Length": "40"}, trickle())
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="took longer"):
        fetch_image_url(f"http://127.0.0.1:{server.port}/slow.png")
    assert time.monotonic() - started < 1.5


# DNS rebinding ----------------------------------------------------------------------------

def test_dns_rebinding_connects_to_the_address_that_was_checked(private_addresses_refused, network, server):
    """The name answers public first and 127.0.0.1 on every later lookup: the studio
    resolves once and connects to the public address it checked."""
    network.public("rebind.test", server, ["127.0.0.1"])
    assert fetch_image_url(f"http://rebind.test:{server.port}/image.png") == PNG
    assert network.lookups == ["rebind.test"], "resolved once"
    assert network.connections == [(PUBLIC_IP, server.port)], "never 127.0.0.1"
    assert server.seen == [("/image.png", f"rebind.test:{server.port}")]


def test_a_rebinding_answer_after_an_early_check_is_checked_again(private_addresses_refused, network, server):
    """An early check_url sees the public answer; the fetch resolves again, gets
    127.0.0.1, and refuses it rather than connect."""
    network.answers["rebind.test"] = [[PUBLIC_IP], ["127.0.0.1"]]
    check_url(f"http://rebind.test:{server.port}/image.png")
    with pytest.raises(FetchRefused, match="private or local address"):
        fetch_image_url(f"http://rebind.test:{server.port}/image.png")
    assert network.connections == [] and server.seen == []


def test_a_url_rebound_to_a_private_address_by_fetch_time_ends_in_error_without_charge(
        private_addresses_refused, network, server, membership, emulator):
    """Public when it was submitted (so the submit-time check let it through), 127.0.0.1
    when the worker fetches it: the studio's own fetch failed, so ERROR, not FAILED (which
    is the gateway's verdict, and billed)."""
    network.answers["rebind.test"] = [[PUBLIC_IP], ["127.0.0.1"]]
    url = f"http://rebind.test:{server.port}/image.png"
    check_url(url)
    job = start_rmbg_from_url(membership, url)
    assert tasks.submit_job(job.pk) == "refused"
    job = Job.objects.get(pk=job.pk)
    assert (job.status, job.money, job.submission) == ("ERROR", "released", "rejected")
    assert job.error.startswith("The image could not be used: The image URL points at a private or local address")
    assert job.error.endswith("You were not charged.")
    assert server.seen == [] and network.connections == [] and emulator.requests() == []
    assert not Asset.objects.exists()
    wallet = Wallet.objects.get(team=membership.team)
    assert (wallet.balance, wallet.held) == (1_000_000, 0)


# HTTPS: pinned to the address, verified against the name -----------------------------------

def make_certificate(tmp_path, name):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An HTTPS server with a certificate for image.test, which the client trusts
    (SSL_CERT_FILE); it records the SNI names it is offered."""
    cert, key = make_certificate(tmp_path, "image.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = Server(tls_context=context)
    server.names = names
    yield server
    server.stop()


def test_https_is_pinned_to_the_checked_address_and_verified_against_the_name(
        private_addresses_refused, network, tls_server):
    network.public("image.test", tls_server, ["127.0.0.1"])
    assert fetch_image_url(f"https://image.test:{tls_server.port}/image.png") == PNG
    assert network.connections == [(PUBLIC_IP, tls_server.port)]
    assert tls_server.names == ["image.test"], "SNI carries the name, not the address"
    assert tls_server.seen == [("/image.png", f"image.test:{tls_server.port}")]


def test_https_with_a_certificate_for_another_name_is_refused(private_addresses_refused, network, tls_server):
    network.public("other.test", tls_server)
    with pytest.raises(FetchRefused, match="could not be fetched"):
        fetch_image_url(f"https://other.test:{tls_server.port}/image.png")
    assert tls_server.seen == [], "nothing was sent over an unverified connection"
