"""Refuse early, charge honestly. An RMBG image URL is judged when it is submitted, on every
path (the studio page's form, the native API, the gateway-compatible API): a wrong scheme,
a private or local address, a host that does not resolve get a 4xx saying which and why,
and nothing is held. What only shows when the worker fetches the image (a refused
connection, a 404, not an image) ends the job in ERROR, released: FAILED is the gateway's
verdict, which it bills, and the gateway never saw these jobs. (Client callbacks:
tests/test_api_gateway.py; the address rules themselves: tests/test_fetch_ssrf.py.)"""

import json

import pytest
from django.test import Client

from jobs import tasks
from jobs.contract import GATEWAY_MODELS
from jobs.models import Job
from studio.api.models import APIKey
from studio.billing.models import Entry, Wallet
from studio.library.models import Asset
from tests.conftest import ACME_CREDIT, login
from tests.stack import bound_socket
from tests.test_fetch_ssrf import Server

RMBG_PATH = GATEWAY_MODELS["rmbg"][1]
PRIVATE = "points at a private or local address (private, loopback, link-local or reserved)"

UNUSABLE = [
    ("http://127.0.0.1:8000/a.png", PRIVATE),
    ("http://[::1]/a.png", PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
    ("http://10.0.0.5/a.png", PRIVATE),
    ("http://192.168.1.1/a.png", PRIVATE),
    ("http://localhost/a.png", PRIVATE),
    ("http://images.invalid/a.png", "names a host, 'images.invalid', that could not be found"),
    ("http://0x7f.1/a.png", "must name its host plainly"),
    ("http://user:pw@example.com/a.png", "must not carry a user name or password"),
]


@pytest.fixture
def key(team, member):
    return APIKey.issue(team, member, "script")[1]


def by_form(member, key, url):
    response = login(member).post("/studio/rmbg/", {"image_url": url})
    errors = response.context["rmbg_form"].errors.get("image_url", []) if response.status_code == 400 else []
    return response.status_code, " ".join(errors)


def by_native_api(member, key, url):
    response = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/api/jobs/rmbg", json.dumps({"image_url": url}), content_type="application/json")
    details = response.json().get("details", []) if response.status_code == 422 else []
    assert all(detail["field"] == "image_url" for detail in details)
    return response.status_code, " ".join(detail["message"] for detail in details)


def by_gateway_api(member, key, url):
    response = Client(HTTP_HOST="127.0.0.1").post(RMBG_PATH, json.dumps({"image_url": url}),
                                                  content_type="application/json", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)
    return response.status_code, response.json()["message"] if response.status_code == 400 else ""


PATHS = {"form": (by_form, 400, "The image URL"), "native API": (by_native_api, 422, "image_url"),
         "gateway-compatible API": (by_gateway_api, 400, "image_url")}


def assert_nothing_held(team):
    assert not Job.objects.exists() and not Asset.objects.exists()
    assert list(Entry.objects.filter(team=team).values_list("kind", flat=True)) == ["topup"]
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (ACME_CREDIT, 0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("url, reason", UNUSABLE)
def test_an_image_url_the_studio_could_never_fetch_is_refused_at_submit(member, key, team, path, url, reason):
    submit, refusal, name = PATHS[path]
    status, message = submit(member, key, url)
    assert status == refusal
    assert message.startswith(name) and reason in message, message
    assert_nothing_held(team)


@pytest.mark.parametrize("path", PATHS)
def test_a_deployment_that_allows_private_addresses_takes_them(member, key, team, settings, path):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    submit, _, _ = PATHS[path]
    assert submit(member, key, "http://127.0.0.1:8000/a.png")[0] in (201, 202, 302)
    assert Job.objects.get().params == {"image_url": "http://127.0.0.1:8000/a.png"}


# What only the fetch can tell ---------------------------------------------------------------------

@pytest.fixture
def site(settings):
    """A web site the worker may fetch from: a local server, with private addresses
    allowed, so each URL passes at submit and its fate is the fetch's."""
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True
    server = Server()
    server.routes["/notes.png"] = (200, {"Content-Type": "image/png"}, b"hello, not an image")
    yield server
    server.stop()


def refused_port():
    sock = bound_socket()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("where, reason", [
    ("/missing.png", "The image URL answered HTTP 404."),
    ("/notes.png", "The file is not a readable PNG, JPEG or WebP image."),
    ("refused", "The image URL could not be fetched (ConnectError)."),
])
def test_a_fetch_that_fails_in_the_worker_ends_in_error_without_charge(key, team, emulator, site, where, reason):
    sock, port = refused_port()
    url = f"http://127.0.0.1:{port}/a.png" if where == "refused" else f"http://127.0.0.1:{site.port}{where}"
    try:
        assert by_gateway_api(None, key, url)[0] == 202
        job = Job.objects.get()
        assert tasks.submit_job(job.pk) == "refused"
    finally:
        sock.close()
    job = Job.objects.get()
    assert (job.status, job.money, job.submission) == ("ERROR", "released", "rejected")
    assert job.error.startswith("The image could not be used: ") and reason in job.error
    assert job.error.endswith("You were not charged.")
    assert emulator.requests() == [], "the gateway never saw it"
    assert sorted(Entry.objects.filter(job=job).values_list("kind", flat=True)) == ["hold", "release"]
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (ACME_CREDIT, 0)
