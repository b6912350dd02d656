"""Uploads are bounded before they are read (studio/uploads.py), over real HTTP: a raw
client sends the headers and a first part of the body, then waits for the answer
without sending the rest. A server that read the body first would wait for the rest,
and the client's read would time out.

The limits are made small here (1 MB of file, 1 MB of other fields) so that "over the
limit" takes a moment to send; the cast comes from tests/conftest.py (mark is a member
of acme, vera a viewer)."""

import http.client
import io
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from PIL import Image

from jobs.models import Job
from tests.test_bad_input import assert_nothing_changed

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
BOUNDARY = "studio-upload-boundary"
CSRF_SECRET = "c" * 32  # a cookie and header pair CsrfViewMiddleware accepts
ANSWER_WITHIN_S = 10


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.UPLOAD_MAX_BYTES = MB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = MB


def png():
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(out, "PNG")
    return out.getvalue()


def file_part_head(name="photo.png"):
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()


FORM_END = f"\r\n--{BOUNDARY}--\r\n".encode()


class Upload:
    """A POST to the studio's RMBG form over a socket of its own, as `user`."""

    def __init__(self, live_server, user, path="/studio/rmbg/"):
        client = Client()
        client.force_login(user)
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}; " \
                      f"{settings.CSRF_COOKIE_NAME}={CSRF_SECRET}"
        address = urlsplit(live_server.url)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=ANSWER_WITHIN_S)
        self.path = path

    def send(self, first_part, content_length=None, csrf_token=CSRF_SECRET):
        """Headers (Content-Length when given, else a chunked body) and `first_part` of
        the body; the rest is never sent. The answer: (status, body text)."""
        self.connection.putrequest("POST", self.path)
        self.connection.putheader("Cookie", self.cookie)
        if csrf_token:
            self.connection.putheader("X-CSRFToken", csrf_token)
        self.connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        if content_length is None:
            self.connection.putheader("Transfer-Encoding", "chunked")
            first_part = b"%x\r\n%s\r\n" % (len(first_part), first_part)
        else:
            self.connection.putheader("Content-Length", str(content_length))
        self.connection.endheaders()
        self.connection.send(first_part)
        response = self.connection.getresponse()
        return response.status, response.read().decode()

    def close(self):
        self.connection.close()


@pytest.fixture
def upload_as(live_server):
    opened = []

    def upload_as(user, **kwargs):
        opened.append(Upload(live_server, user, **kwargs))
        return opened[-1]

    yield upload_as
    for upload in opened:
        upload.close()


def form_errors(page):
    return re.findall(r'<p class="error form-error" role="alert">(.*?)</p>', page)


def test_a_small_upload_goes_through(upload_as, member, team):
    """The raw client itself, on an upload the studio takes (nothing refused)."""
    body = file_part_head() + png() + FORM_END
    status, _ = upload_as(member).send(body, content_length=len(body))
    assert status == 302
    assert Job.objects.get(team=team).model == "rmbg"


def test_the_csrf_token_is_still_checked_after_the_limits(upload_as, member, team):
    body = file_part_head() + png() + FORM_END
    status, page = upload_as(member).send(body, content_length=len(body), csrf_token=None)
    assert status == 403 and "CSRF" in page
    assert_nothing_changed(team)


def test_an_upload_declaring_more_than_the_limit_is_refused_unread(upload_as, member, team):
    status, page = upload_as(member).send(file_part_head() + png() + bytes(64 * 1024), content_length=300 * MB)
    assert status == 413
    assert form_errors(page) == ["The image is larger than 1 MB."]
    assert_nothing_changed(team)


def test_an_upload_streaming_past_the_limit_stops_being_read_there(upload_as, member, team):
    """Its Content-Length is within the request's limit (1 MB of file, 1 MB of fields),
    but the file passes 1 MB: the server answers before the rest is sent."""
    first_part = file_part_head() + png() + bytes(MB + 128 * 1024)
    status, page = upload_as(member).send(first_part, content_length=2 * MB - 1024)
    assert status == 413
    assert form_errors(page) == ["The image is larger than 1 MB."]
    assert_nothing_changed(team)


def test_an_upload_without_a_content_length_is_refused_unread(upload_as, member, team):
    status, page = upload_as(member).send(file_part_head() + png())
    assert status == 411
    assert form_errors(page) == ["Send the upload with a Content-Length header."]
    assert_nothing_changed(team)


@pytest.mark.parametrize("content_length", [MB, 300 * MB], ids=["within-the-limit", "over-the-limit"])
def test_a_viewers_upload_is_403_before_its_body_is_read(upload_as, viewer, team, content_length):
    status, page = upload_as(viewer).send(file_part_head() + png(), content_length=content_length)
    assert status == 403
    assert "Your role in this team cannot run jobs." in page
    assert_nothing_changed(team)


def test_a_large_multipart_body_to_any_other_form_is_not_read_either(upload_as, member, team):
    status, _ = upload_as(member, path="/studio/fibo/").send(file_part_head() + png(), content_length=300 * MB)
    assert 400 <= status < 500
    assert_nothing_changed(team)
