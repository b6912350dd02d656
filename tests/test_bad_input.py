"""Bad input, wherever a member or a script can send it, gets a clear 4xx and changes
nothing: no job, no ledger entry, the wallet as it was, no image in the library and no
file in storage. Through the real views: the studio's two forms (htmx and plain), the
gateway-compatible API at the seed's paths, the native API, the status endpoints and
the gateway's webhook.

The cast comes from tests/conftest.py: mark is a member of acme, whose wallet has $1.00.
Cases the other test files already cover (an unknown field, a forged webhook token…)
are not repeated here."""

import html
import io
import json
import os
import re
import struct
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from PIL import Image

from jobs.actions import start_fibo
from jobs.contract import fibo_params
from jobs.models import Job, WebhookDelivery, hash_token
from studio.activity.models import Event
from studio.api.models import APIKey
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify
from studio.library.models import Asset
from tests.conftest import ACME_CREDIT, login

HX = {"HTTP_HX_REQUEST": "true"}
FORM = {"prompt": "a red balloon", "aspect_ratio": "1:1", "seed": "", "steps_num": "30", "guidance_scale": "7.5"}
FIBO_PATH = "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"
RMBG_PATH = "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"
MB = 1024 * 1024
UNKNOWN = "6f1c5a52-3d0a-4a8e-9d54-3f1b8f7e2a10"  # no job's code
UNKNOWN_ASSET = "0b8a4c1e-2f3d-4e5a-8b6c-7d8e9f0a1b2c"  # no image's code


def assert_nothing_changed(team):
    """No job, no ledger entry past the team's credit, the wallet as it was, no image in
    the library or in storage, nothing in the activity feed, and the books balance."""
    assert not Job.objects.exists()
    assert list(Entry.objects.filter(team=team).values_list("kind", flat=True)) == [Entry.Kind.TOPUP]
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (ACME_CREDIT, 0)
    assert not Asset.objects.exists()
    assert stored_files() == []
    assert not Event.objects.filter(verb__in=[Event.Verb.GENERATED, Event.Verb.REMOVED_BACKGROUND]).exists()
    assert verify() == []


def stored_files():
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def field_errors(page, name):
    """The error messages shown inside the form field `name`'s own block."""
    for block in re.findall(r'<div class="field has-error">(.*?)</div>', page, re.S):
        if f'name="{name}"' in block:
            return [html.unescape(e) for e in re.findall(r'<small class="error" role="alert">(.*?)</small>', block)]
    return []


def form_errors(page):
    return [html.unescape(e) for e in re.findall(r'<p class="error form-error" role="alert">(.*?)</p>', page)]


# Images ------------------------------------------------------------------------------------

def image_bytes(fmt="PNG", size=(32, 32), mode="RGB", **options):
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 0).save(out, fmt, **options)
    return out.getvalue()


def with_declared_size(png, width, height):
    """The PNG with its IHDR claiming another size (CRC fixed): a decompression bomb's
    header on a file of a few bytes."""
    start = 8 + 8  # signature, then the IHDR chunk's length and type
    fields = struct.pack(">II", width, height) + png[start + 8:start + 13]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + fields) & 0xFFFFFFFF)
    return png[:start] + fields + crc + png[start + 17:]


def noise_png(side):
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
NOT_AN_IMAGE = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
ONLY_PNG_JPEG_WEBP = "Only PNG, JPEG and WebP images are accepted."


# The studio's FIBO form ---------------------------------------------------------------------

REQUIRED = "This field is required."
WHOLE = "Enter a whole number."
NUMBER = "Enter a number."


@pytest.mark.parametrize("field, value, message", [
    ("prompt", None, REQUIRED),
    ("prompt", "", REQUIRED),
    ("prompt", " \t\n ", REQUIRED),
    ("prompt", "x" * 2001, "Must be at most 2000 characters."),
    ("prompt", "x" * MB, "Must be at most 2000 characters."),
    ("prompt", "a\x00b", "Null characters are not allowed."),
    ("steps_num", "0", "Must be between 1 and 100."),
    ("steps_num", "101", "Must be between 1 and 100."),
    ("steps_num", "abc", WHOLE),
    ("steps_num", "1.5", WHOLE),
    ("steps_num", "true", WHOLE),
    ("guidance_scale", "4.99", "Must be between 5 and 10."),
    ("guidance_scale", "10.01", "Must be between 5 and 10."),
    ("guidance_scale", "x", NUMBER),
    ("guidance_scale", "NaN", NUMBER),
    ("guidance_scale", "Infinity", NUMBER),
    ("guidance_scale", "-Infinity", NUMBER),
    ("guidance_scale", "7.125", "Must have at most 2 decimal places."),
    ("guidance_scale", "1e400", "Must be between 5 and 10."),
    ("seed", "-1", "Must be between 0 and 4294967295."),
    ("seed", str(2**32), "Must be between 0 and 4294967295."),
    ("seed", "1e3", WHOLE),
    ("aspect_ratio", "2:1", "Select a valid choice. 2:1 is not one of the available choices."),
    ("aspect_ratio", "", REQUIRED),
    ("aspect_ratio", None, REQUIRED),
])
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_the_fibo_form_shows_the_error_next_to_the_field_and_changes_nothing(member, team, field, value, message,
                                                                           htmx):
    data = {**FORM, field: value} if value is not None else {k: v for k, v in FORM.items() if k != field}
    response = login(member).post("/studio/fibo/", data, **(HX if htmx else {}))
    page = response.content.decode()
    if htmx:  # the form comes back in place of itself
        assert response.status_code == 200
        assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#fibo-form", "outerHTML")
    else:
        assert response.status_code == 400
    assert message in field_errors(page, field)
    assert_nothing_changed(team)


# The studio's RMBG form --------------------------------------------------------------------

def upload(data, name="photo.png", content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


URL = "Must be an http or https URL of at most 2000 characters."
PLAIN_HOST = "The image URL must name its host plainly: a name or a plainly written IP address."
PRIVATE = ("The image URL points at a private or local address (private, loopback, link-local or reserved), which "
           "the studio does not connect to.")


@pytest.mark.parametrize("url, message", [
    ("file:///etc/passwd", URL),
    ("ftp://example.com/a.png", URL),
    ("gopher://example.com:70/_GET", URL),
    ("data:image/png;base64,iVBORw0KGgo=", URL),
    ("javascript:alert(1)", URL),
    ("http://", URL),
    ("not a url", URL),
    ("http://2130706433/a.png", PLAIN_HOST),
    ("http://0x7f.1/a.png", PLAIN_HOST),
    ("http://0177.0.0.1/a.png", PLAIN_HOST),
    ("https://example.com/" + "x" * 2000, URL),
    ("http://127.0.0.1/a.png", PRIVATE),
    ("http://[::1]/a.png", PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
    ("http://no-such-host.invalid/a.png", "The image URL names a host, 'no-such-host.invalid', that could not be found."),
])
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_an_unusable_image_url_is_refused_next_to_the_field(member, team, url, message, htmx):
    response = login(member).post("/studio/rmbg/", {"image_url": url}, **(HX if htmx else {}))
    assert response.status_code == (200 if htmx else 400)
    assert field_errors(response.content.decode(), "image_url") == [message]
    assert_nothing_changed(team)


@pytest.mark.parametrize("data, name, message", [
    (b"", "empty.png", "The submitted file is empty."),
    (b"hello, not an image", "notes.png", NOT_AN_IMAGE),
    (SVG, "drawing.svg", NOT_AN_IMAGE),
    (image_bytes()[:-40], "truncated.png", NOT_AN_IMAGE),
    (noise_png(64)[:3000], "cut.png", NOT_AN_IMAGE),
    (with_declared_size(image_bytes(size=(1, 1)), 20_000, 20_000), "bomb.png", NOT_AN_IMAGE),
], ids=["empty", "text", "svg", "truncated-end", "truncated-data", "bomb-20000x20000"])
def test_an_upload_that_is_not_an_image_is_refused_next_to_the_field(member, team, data, name, message):
    response = login(member).post("/studio/rmbg/", {"image": upload(data, name)}, **HX)
    assert response.status_code == 200 and response["HX-Retarget"] == "#rmbg-form"
    assert field_errors(response.content.decode(), "image") == [message]
    assert_nothing_changed(team)


@pytest.mark.parametrize("make, message", [
    (lambda: image_bytes("GIF", mode="P"), ONLY_PNG_JPEG_WEBP),
    (lambda: image_bytes("BMP"), ONLY_PNG_JPEG_WEBP),
    (lambda: image_bytes("TIFF"), ONLY_PNG_JPEG_WEBP),
    (lambda: with_declared_size(image_bytes(size=(1, 1), mode="1"), 8000, 5001), "The image has too many pixels."),
], ids=["gif", "bmp", "tiff", "40M-pixels"])
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_an_image_the_studio_does_not_take_is_refused_with_a_message(member, team, make, message, htmx):
    response = login(member).post("/studio/rmbg/", {"image": upload(make())}, **(HX if htmx else {}))
    assert response.status_code == (200 if htmx else 400)
    assert form_errors(response.content.decode()) == [message]
    assert_nothing_changed(team)


def test_an_image_with_more_pixels_than_allowed_is_refused(member, team, settings):
    settings.UPLOAD_MAX_PIXELS = 10_000
    response = login(member).post("/studio/rmbg/", {"image": upload(image_bytes(size=(101, 100)))}, **HX)
    assert form_errors(response.content.decode()) == ["The image has too many pixels."]
    assert_nothing_changed(team)


def test_an_image_over_the_size_limit_is_refused(member, team, settings):
    settings.UPLOAD_MAX_BYTES = MB
    data = noise_png(620)
    assert len(data) > MB
    response = login(member).post("/studio/rmbg/", {"image": upload(data)}, **HX)
    assert form_errors(response.content.decode()) == ["The image is larger than 1 MB."]
    assert_nothing_changed(team)


def test_a_large_16_bit_grayscale_png_is_refused_or_taken_but_never_a_500(member, team):
    client = login(member)
    client.raise_request_exception = False
    response = client.post("/studio/rmbg/", {"image": upload(image_bytes(size=(2000, 2000), mode="I;16"))}, **HX)
    assert response.status_code < 500
    if not Job.objects.exists():
        assert_nothing_changed(team)


# The gateway-compatible API ----------------------------------------------------------------

@pytest.fixture
def key(team, member):
    return APIKey.issue(team, member, "x")[1]


def gateway_post(path, key, body=None, raw=None):
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    return client.post(path, raw if raw is not None else json.dumps(body), content_type="application/json",
                       HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)


def assert_gateway_refusal(response, message):
    """A 400 in the seed's error shape, {"error", "message"}, saying `message`."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == "Bad Request"
    assert message in body["message"]


@pytest.mark.parametrize("body, message", [
    ({"prompt": None}, "prompt must be a string"),
    ({"prompt": 42}, "prompt must be a string"),
    ({"prompt": ["a"]}, "prompt must be a string"),
    ({"prompt": " \t\n "}, "prompt must not be empty"),
    ({"prompt": "x" * 2001}, "prompt must be at most 2000 characters"),
    ({"prompt": "x" * MB}, "prompt must be at most 2000 characters"),
    ({"prompt": "x", "steps_num": 0}, "steps_num must be between 1 and 100"),
    ({"prompt": "x", "steps_num": 101}, "steps_num must be between 1 and 100"),
    ({"prompt": "x", "steps_num": "abc"}, "steps_num must be an integer"),
    ({"prompt": "x", "steps_num": "30"}, "steps_num must be an integer"),
    ({"prompt": "x", "steps_num": 1.5}, "steps_num must be an integer"),
    ({"prompt": "x", "steps_num": True}, "steps_num must be an integer"),
    ({"prompt": "x", "steps_num": None}, "steps_num must be an integer"),
    ({"prompt": "x", "guidance_scale": "x"}, "guidance_scale must be a number"),
    ({"prompt": "x", "guidance_scale": "7.5"}, "guidance_scale must be a number"),
    ({"prompt": "x", "guidance_scale": True}, "guidance_scale must be a number"),
    ({"prompt": "x", "guidance_scale": -7.5}, "guidance_scale must be between 5 and 10"),
    ({"prompt": "x", "seed": "1e3"}, "seed must be an integer"),
    ({"prompt": "x", "seed": 1.5}, "seed must be an integer"),
    ({"prompt": "x", "seed": True}, "seed must be an integer"),
    ({"prompt": "x", "seed": 2**64}, "seed must be between 0 and 4294967295"),
    ({"prompt": "x", "seed": -1}, "seed must be between 0 and 4294967295"),
    ({"prompt": "x", "seed": 2**32}, "seed must be between 0 and 4294967295"),
    ({"prompt": "x", "aspect_ratio": ""}, "aspect_ratio must be one of"),
    ({"prompt": "x", "aspect_ratio": None}, "aspect_ratio must be one of"),
    ({"prompt": "x", "aspect_ratio": "1:1 "}, "aspect_ratio must be one of"),
    ({"prompt": "x", "aspect_ratio": ["1:1"]}, "aspect_ratio must be one of"),
])
def test_the_gateway_api_refuses_bad_fibo_parameters(key, team, body, message):
    assert_gateway_refusal(gateway_post(FIBO_PATH, key, body), message)
    assert_nothing_changed(team)


@pytest.mark.parametrize("raw, message", [
    ('{"prompt": "x", "guidance_scale": NaN}', "not valid JSON"),
    ('{"prompt": "x", "guidance_scale": Infinity}', "not valid JSON"),
    ('{"prompt": "x", "guidance_scale": -Infinity}', "not valid JSON"),
    ('{"prompt": "x", "steps_num": 1e400}', "steps_num must be an integer"),
    ('{"prompt": "x", "guidance_scale": 1e400}', "guidance_scale must be a number"),
    (b'{"prompt": "\xff\xfe"}', "not valid JSON"),
    ("", "must be a JSON object"),
    ("   ", "must be a JSON object"),
    ("[]", "must be a JSON object"),
    ('"prompt"', "must be a JSON object"),
    ("null", "must be a JSON object"),
    ("prompt=x", "not valid JSON"),
], ids=["nan", "infinity", "-infinity", "steps-1e400", "guidance-1e400", "not-utf8", "empty", "blank", "array",
        "string", "null", "form-encoded"])
def test_the_gateway_api_refuses_bodies_that_are_not_a_json_object_of_numbers(key, team, raw, message):
    assert_gateway_refusal(gateway_post(FIBO_PATH, key, raw=raw), message)
    assert_nothing_changed(team)


@pytest.mark.parametrize("body, message", [
    ({}, "image_url is required"),
    ({"image_url": None}, "image_url must be an http or https URL"),
    ({"image_url": 42}, "image_url must be an http or https URL"),
    ({"image_url": ""}, "image_url must be an http or https URL"),
    ({"image_url": "file:///etc/passwd"}, "image_url must be an http or https URL"),
    ({"image_url": "ftp://example.com/a.png"}, "image_url must be an http or https URL"),
    ({"image_url": "gopher://example.com:70/_GET"}, "image_url must be an http or https URL"),
    ({"image_url": "data:image/png;base64,iVBORw0KGgo="}, "image_url must be an http or https URL"),
    ({"image_url": "javascript:alert(1)"}, "image_url must be an http or https URL"),
    ({"image_url": "http://"}, "image_url must be an http or https URL"),
    ({"image_url": "https://example.com/" + "x" * 3000}, "image_url must be an http or https URL"),
    ({"image_url": "https://example.com/a.png", "prompt": "x"}, "Unknown field"),
])
def test_the_gateway_api_refuses_bad_image_urls(key, team, body, message):
    assert_gateway_refusal(gateway_post(RMBG_PATH, key, body), message)
    assert_nothing_changed(team)


def test_a_body_over_the_upload_limit_is_400(key, team):
    response = gateway_post(FIBO_PATH, key, {"prompt": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert_gateway_refusal(response, "The request body is larger than the 5 MB this endpoint reads.")
    assert_nothing_changed(team)


@pytest.mark.parametrize("request_id", [
    "bria-rmbg-2-0-682_{code}",  # a real FIBO job asked for under the RMBG model's id
    "bria-fibo-bbq-preview_{code}x",
    "bria-fibo-bbq-preview_" + "x" * 5000,
    "bria-fibo-bbq-preview_%00",
    "_",
])
def test_the_gateway_status_of_an_unknown_request_is_404_in_the_seeds_shape(key, membership, request_id):
    job = start_fibo(membership, fibo_params("x"))
    response = Client(HTTP_HOST="127.0.0.1").get(f"/v2/requests/status/{request_id.format(code=job.code)}",
                                                 HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found" and "not found" in response.json()["message"]


# The native API --------------------------------------------------------------------------

@pytest.fixture
def api(key):
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}", raise_request_exception=False)


def assert_api_refusal(response, field, status=422):
    """The API's one error shape, naming the field that is wrong."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["message"]
    if field is not None:
        assert [detail["field"] for detail in body["details"]] == [field]
        assert all(detail["message"] for detail in body["details"])


@pytest.mark.parametrize("body, field", [
    ({}, "prompt"),
    ({"prompt": None}, "prompt"),
    ({"prompt": 42}, "prompt"),
    ({"prompt": "x" * 2001}, "prompt"),
    ({"prompt": "x" * MB}, "prompt"),
    ({"prompt": " \t\n "}, "prompt"),
    ({"prompt": "x", "steps_num": "abc"}, "steps_num"),
    ({"prompt": "x", "steps_num": "30"}, "steps_num"),
    ({"prompt": "x", "steps_num": 1.5}, "steps_num"),
    ({"prompt": "x", "steps_num": True}, "steps_num"),
    ({"prompt": "x", "steps_num": None}, "steps_num"),
    ({"prompt": "x", "guidance_scale": "x"}, "guidance_scale"),
    ({"prompt": "x", "guidance_scale": True}, "guidance_scale"),
    ({"prompt": "x", "guidance_scale": "NaN"}, "guidance_scale"),
    ({"prompt": "x", "guidance_scale": 7.125}, "guidance_scale"),
    ({"prompt": "x", "seed": "1e3"}, "seed"),
    ({"prompt": "x", "seed": 1.5}, "seed"),
    ({"prompt": "x", "seed": True}, "seed"),
    ({"prompt": "x", "aspect_ratio": ""}, "aspect_ratio"),
    ({"prompt": "x", "aspect_ratio": None}, "aspect_ratio"),
])
def test_the_native_api_refuses_bad_fibo_parameters(api, team, body, field):
    assert_api_refusal(api.post("/api/jobs/fibo", json.dumps(body), content_type="application/json"), field)
    assert_nothing_changed(team)


@pytest.mark.parametrize("raw, field", [
    ('{"prompt": "x", "guidance_scale": NaN}', "guidance_scale"),
    ('{"prompt": "x", "guidance_scale": Infinity}', "guidance_scale"),
    ('{"prompt": "x", "steps_num": NaN}', "steps_num"),
    ('{"prompt": "\\ud800"}', "prompt"),
], ids=["guidance-nan", "guidance-infinity", "steps-nan", "lone-surrogate"])
def test_the_native_api_refuses_numbers_json_does_not_have(api, team, raw, field):
    assert_api_refusal(api.post("/api/jobs/fibo", raw, content_type="application/json"), field)
    assert_nothing_changed(team)


@pytest.mark.parametrize("body, field", [
    ({"image_url": "file:///etc/passwd"}, "image_url"),
    ({"image_url": "gopher://example.com:70/_GET"}, "image_url"),
    ({"image_url": "data:image/png;base64,iVBORw0KGgo="}, "image_url"),
    ({"image_url": "javascript:alert(1)"}, "image_url"),
    ({"image_url": "http://"}, "image_url"),
    ({"image_url": "http://exa mple.com/a.png"}, "image_url"),
    ({"image_url": "https://example.com/" + "x" * 2000}, "image_url"),
    ({"image_url": 42}, "image_url"),
])
def test_the_native_api_refuses_bad_image_urls(api, team, body, field):
    assert_api_refusal(api.post("/api/jobs/rmbg", json.dumps(body), content_type="application/json"), field)
    assert_nothing_changed(team)


def test_an_unknown_library_image_for_rmbg_is_404(api, team):
    response = api.post("/api/jobs/rmbg", json.dumps({"asset": UNKNOWN_ASSET}), content_type="application/json")
    assert_api_refusal(response, None, status=404)
    assert_nothing_changed(team)


@pytest.mark.parametrize("path", [f"/api/jobs/{UNKNOWN}", "/api/jobs/not-a-uuid", f"/api/jobs/{UNKNOWN}/retry"])
def test_the_native_api_answers_404_for_an_unknown_job(api, team, path):
    response = api.post(path) if path.endswith("/retry") else api.get(path)
    assert_api_refusal(response, None, status=404)
    assert_nothing_changed(team)


def test_a_studio_card_for_an_unknown_job_is_404(member, team):
    assert login(member).get(f"/jobs/{UNKNOWN}/", **HX).status_code == 404
    assert_nothing_changed(team)


# Known gaps: each is reported with its fix, outside the files of this change --------------

@pytest.mark.parametrize("raw", ['{"prompt": "x", "steps_num": Infinity}', '{"prompt": "x", "steps_num": 1e400}',
                                 '{"prompt": "x", "seed": -Infinity}'])
def test_the_native_api_refuses_an_infinite_integer(api, team, raw):
    assert_api_refusal(api.post("/api/jobs/fibo", raw, content_type="application/json"), None)
    assert_nothing_changed(team)


def test_the_gateway_api_refuses_a_guidance_scale_beyond_any_float(key, team):
    assert_gateway_refusal(gateway_post(FIBO_PATH, key, {"prompt": "x", "guidance_scale": 10**400}),
                           "guidance_scale must be between 5 and 10")
    assert_nothing_changed(team)


@pytest.mark.parametrize("raw", ["[" * 50_000, '{"prompt": ' + "[" * 50_000 + "}"], ids=["array", "in-object"])
def test_the_gateway_api_refuses_deeply_nested_json(key, team, raw):
    assert_gateway_refusal(gateway_post(FIBO_PATH, key, raw=raw), "not valid JSON")
    assert_nothing_changed(team)


def test_the_gateway_api_refuses_a_prompt_that_is_not_unicode_text(key, team):
    assert_gateway_refusal(gateway_post(FIBO_PATH, key, raw='{"prompt": "\\ud800"}'), "prompt")
    assert_nothing_changed(team)


@pytest.mark.parametrize("path, body", [
    ("/api/jobs/fibo", {"prompt": "a\x00b"}), ("/api/jobs/rmbg", {"image_url": "https://example.com/a\x00.png"}),
    (FIBO_PATH, {"prompt": "a\x00b"}), (RMBG_PATH, {"image_url": "https://example.com/a\x00.png"}),
], ids=["native-fibo", "native-rmbg", "gateway-fibo", "gateway-rmbg"])
def test_a_nul_character_is_refused_everywhere(key, team, path, body):
    response = gateway_post(path, key, body) if not path.startswith("/api/") else Client(
        HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}", raise_request_exception=False,
    ).post(path, json.dumps(body), content_type="application/json")
    assert response.status_code in (400, 422), response.content
    assert_nothing_changed(team)


# The gateway's webhook (cases tests/test_webhooks.py does not already cover) -------------------

TOKEN = "t" * 43


@pytest.fixture
def submitted(membership):
    """A FIBO job the gateway accepted: held, waiting for news."""
    job = start_fibo(membership, fibo_params("a lighthouse"))
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="bria-fibo-bbq-preview_abc",
                                         webhook_token_hash=hash_token(TOKEN))
    get_broker().purge_queue()
    return Job.objects.get(pk=job.pk)


def hook(job, raw, token=TOKEN, code=None):
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    return client.post(f"/hooks/pixazo/{code or job.code}/{token}/", raw, content_type="application/json")


def assert_webhook_changed_nothing(job):
    assert not WebhookDelivery.objects.exists()
    fresh = Job.objects.get(pk=job.pk)
    assert (fresh.status, fresh.money, fresh.request_id, fresh.updated_at) == (
        "QUEUED", "held", job.request_id, job.updated_at)
    assert list(Entry.objects.filter(job=job).values_list("kind", flat=True)) == ["hold"]
    broker = get_broker()
    queued = [SignedPackage.loads(payload) for _, payload in (broker.dequeue() or [])]
    assert [task for task in queued if task["func"] == "jobs.tasks.refresh_job"] == []
    assert verify() == []


@pytest.mark.parametrize("raw", [
    b'{"request_id": "bria-fibo-bbq-preview_abc", "status": "COMPLETED", "error": "\xff"}',
    json.dumps({"request_id": 42, "status": "COMPLETED"}),
    json.dumps({"request_id": None, "status": "COMPLETED"}),
    json.dumps({"request_id": "bria-fibo-bbq-preview_abc", "status": "completed"}),
    json.dumps({"request_id": "bria-fibo-bbq-preview_abc", "status": ["COMPLETED"]}),
    json.dumps({"request_id": "bria-fibo-bbq-preview_abc"}),
    '{"request_id": NaN, "status": "COMPLETED"}',
    '"COMPLETED"',
    "",
], ids=["not-utf8", "id-number", "id-null", "status-lowercase", "status-list", "no-status", "id-nan", "string",
        "empty"])
def test_a_malformed_webhook_is_400_and_changes_nothing(submitted, raw):
    response = hook(submitted, raw)
    assert response.status_code == 400 and response.json()["ok"] is False
    assert "request_id and status" in response.json()["message"]
    assert_webhook_changed_nothing(submitted)


def test_another_jobs_token_opens_no_webhook(submitted, membership):
    other = start_fibo(membership, fibo_params("another"))
    response = hook(submitted, json.dumps({"request_id": submitted.request_id, "status": "COMPLETED"}),
                    code=other.code)
    assert response.status_code == 404
    assert_webhook_changed_nothing(submitted)


def test_the_token_is_checked_before_the_body_is_read(submitted):
    response = hook(submitted, b"x" * 200_000, token="forged")
    assert response.status_code == 404
    assert_webhook_changed_nothing(submitted)


def test_a_deeply_nested_webhook_body_is_400(submitted):
    response = hook(submitted, "[" * 50_000)
    assert response.status_code == 400
    assert_webhook_changed_nothing(submitted)
