"""Every error on the studio's two APIs is JSON in that API's shape (studio/api/middleware.py),
the ones Django or django-ninja make by themselves included: a body over the limit, a
Host not allowed, an unknown path, a wrong method, an unexpected exception (a 500, still
logged and reported). And no text a database cannot hold gets through: a NUL or a lone
surrogate in any text field or query parameter of either API is a 4xx in the right
shape that changes nothing (hypothesis, over the fields and parameters the OpenAPI
schema lists, so a new one is covered without a new case here); pages' query strings
get a 400 too (studio/textinput.py).

The cast comes from tests/conftest.py: mark is a member of acme, whose wallet has $1.00."""

import datetime
import json
from urllib.parse import quote

import httpx
import pytest
from django.apps import apps
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from studio.api.models import APIKey
from studio.api.native import api
from studio.gallery.models import Gallery, ShareLink
from studio.library.models import Asset
from tests.conftest import login
from tests.stack import bound_socket, wait_until
from tests.test_api_native import png
from tests.test_error_reports import Ingest, events, ingest  # noqa: F401 (a fixture)
from tests.test_health import gunicorn

HOST = "127.0.0.1"
FIBO_PATH = "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"
RMBG_PATH = "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"
STATUS_PATH = "/v2/requests/status/"
NATIVE_SHAPE = {"error", "message", "details"}
GATEWAY_SHAPE = {"error", "message"}
STUDIO_APPS = ("accounts", "billing", "library", "gallery", "activity", "api", "jobs")


def shaped(response, status, shape, error):
    """The response is `status`, JSON in `shape` with this error; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == shape and body["error"] == error and body["message"], body
    return body


def native(response, status, code):
    return shaped(response, status, NATIVE_SHAPE, code)


def gateway(response, status, error):
    return shaped(response, status, GATEWAY_SHAPE, error)


@pytest.fixture
def key(team, member):
    return APIKey.issue(team, member, "script")[1]


@pytest.fixture
def as_key(key):
    return Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key,
                  raise_request_exception=False)


def database_state():
    """Every row of the studio's own tables (a key's last use aside: it is noted at most
    once a minute, whatever the request)."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label in STUDIO_APPS:
            rows = list(model.objects.order_by("pk").values())
            for row in rows:
                row.pop("last_used_at", None)
            state[model._meta.label] = rows
    return state


# Django's own refusals, in each API's shape -------------------------------------------------

def test_a_body_over_the_limit_is_400_in_each_apis_shape(as_key, team, settings):
    too_big = json.dumps({"title": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    before = database_state()
    body = native(as_key.post("/api/galleries", too_big, content_type="application/json"), 400, "bad_request")
    assert body["message"] == "The request body is larger than the 5 MB this endpoint reads."
    body = gateway(as_key.post(FIBO_PATH, too_big, content_type="application/json"), 400, "Bad Request")
    assert body["message"] == "The request body is larger than the 5 MB this endpoint reads."
    assert database_state() == before


def test_a_host_that_is_not_allowed_is_400_in_each_apis_shape(key):
    stranger = Client(HTTP_HOST="studio.evil.example", HTTP_AUTHORIZATION=f"Bearer {key}")
    native(stranger.get("/api/jobs"), 400, "bad_request")
    gateway(stranger.get(f"{STATUS_PATH}bria-fibo-bbq-preview_x", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key), 400,
            "Bad Request")


def test_an_unknown_gateway_path_and_a_wrong_method_answer_in_the_gateways_shape(as_key):
    gateway(as_key.get("/bria-fibo-bbq-preview/v1/no-such-thing"), 404, "Not Found")
    gateway(as_key.get(STATUS_PATH), 404, "Not Found")
    response = as_key.get(FIBO_PATH)
    gateway(response, 405, "Method Not Allowed")
    assert response["Allow"] == "POST"


def test_a_page_keeps_djangos_own_answers(member):
    response = login(member).get("/no/such/page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


def test_an_unexpected_error_is_a_json_500_in_each_apis_shape_logged_and_reported(ingest, tmp_path):  # noqa: F811
    """The database is down (connections refused), so finding the key fails: a real 500."""
    refusing = bound_socket()
    web = gunicorn(tmp_path, SENTRY_DSN=f"http://publickey@127.0.0.1:{ingest.server_address[1]}/1", REDIS_URL="",
                   CACHE_URL="", DATABASE_URL=f"postgres://studio@127.0.0.1:{refusing.getsockname()[1]}/studio")
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            listed = client.get("/api/jobs", headers={"Authorization": "Bearer bria_x", "X-Request-ID": "req-api-500"})
            submitted = client.post(FIBO_PATH, json={"prompt": "x"},
                                    headers={"Ocp-Apim-Subscription-Key": "bria_x", "X-Request-ID": "req-gateway-500"})
        reported = wait_until(lambda: {e["tags"]["request_id"] for e in events(Ingest.received) if e.get("exception")}
                              >= {"req-api-500", "req-gateway-500"}, seconds=20, what=lambda: web.log_tail())
        log = web.output()
    finally:
        web.stop()
        refusing.close()
    assert (listed.status_code, listed.headers["Content-Type"]) == (500, "application/json")
    assert listed.json() == {"error": "internal_error", "details": [],
                             "message": "An unexpected error occurred and was logged; please try again later."}
    assert (submitted.status_code, submitted.headers["Content-Type"]) == (500, "application/json")
    assert submitted.json() == {"error": "Internal Server Error",
                                "message": "An unexpected error occurred. Please try again later."}
    assert reported
    assert "Internal Server Error: /api/jobs" in log and f"Internal Server Error: {FIBO_PATH}" in log


# Text a database cannot hold ------------------------------------------------------------------

@pytest.mark.parametrize("body", [{"title": "a\x00b"}, {"title": "Picks", "description": "a\x00b"}],
                         ids=["title", "description"])
def test_a_nul_in_a_gallerys_text_is_422_naming_the_field(as_key, team, member, body):
    gallery = Gallery.objects.create(team=team, title="Picks", created_by=member)
    before = database_state()
    field = next(name for name, value in body.items() if "\x00" in value)
    created = native(as_key.post("/api/galleries", json.dumps(body), content_type="application/json"), 422, "invalid")
    edited = native(as_key.patch(f"/api/galleries/{gallery.code}", json.dumps(body), content_type="application/json"),
                    422, "invalid")
    for answer in (created, edited):
        assert answer["details"] == [{"field": field,
                                      "message": f"{field} must be text without NUL characters or lone surrogates"}]
    assert database_state() == before


@pytest.mark.parametrize("query", ["/api/jobs?member=%00", "/api/library?q=a%00b", "/api/library?member=x%00",
                                   "/api/wallet/ledger?kind=%ED%A0%80"])
def test_a_query_parameter_that_is_not_text_is_400_naming_it(as_key, team, query):
    name = query.partition("?")[2].partition("=")[0]
    body = native(as_key.get(query), 400, "bad_request")
    assert body["details"] == [{"field": name, "message": f"{name} must be UTF-8 text without NUL characters."}]


def test_a_gateway_query_parameter_that_is_not_text_is_400(as_key):
    body = gateway(as_key.get(f"{STATUS_PATH}bria-fibo-bbq-preview_x?trace=%00"), 400, "Bad Request")
    assert body["message"] == "trace must be UTF-8 text without NUL characters."


@pytest.mark.parametrize("path", ["/library/?q=%00", "/library/?member=%00", "/wallet/?member=%00&kind=capture",
                                  "/studio/?remix=%00", "/activity/?before=%00", "/library/?q=%C3%28"])
def test_a_pages_query_string_that_is_not_text_is_400_not_500(member, team, path):
    client = login(member)
    client.raise_request_exception = False
    response = client.get(path)
    assert response.status_code == 400
    assert "must be UTF-8 text without NUL characters" in response.content.decode()


# Every text field and query parameter of both APIs, from the schema ---------------------------

SCHEMA = api.get_openapi_schema()
NOT_TEXT = st.builds(lambda before, bad, after: before + bad + after, st.text(max_size=12),
                     st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]), st.text(max_size=12))
LATER = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
# A body each operation takes, so that the one text made bad is all that is wrong (where
# an operation has alternatives, the one with that field is used).
VALID_BODIES = {
    ("post", "/api/jobs/fibo"): [{"prompt": "a red balloon", "aspect_ratio": "1:1"}],
    ("post", "/api/jobs/rmbg"): [{"image_url": "https://example.com/a.png"}, {"asset": "{asset}"}],
    ("post", "/api/galleries"): [{"title": "Picks", "description": "The best ones"}],
    ("patch", "/api/galleries/{code}"): [{"title": "Picks", "description": "The best ones"}],
    ("post", "/api/galleries/{code}/items"): [{"asset": "{asset}"}],
    ("post", "/api/galleries/{code}/items/{asset}/move"): [{"direction": "up"}],
    ("put", "/api/galleries/{code}/cover"): [{"asset": "{asset}"}],
    ("post", "/api/galleries/{code}/links"): [{"hide_recipe": True, "expires_at": LATER}],
}
GATEWAY_BODIES = {  # the seed document's text fields
    FIBO_PATH: ({"prompt": "a red balloon", "aspect_ratio": "1:1"}, ("prompt", "aspect_ratio")),
    RMBG_PATH: ({"image_url": "https://example.com/a.png"}, ("image_url",)),
}


def resolved(schema):
    if "$ref" in schema:
        return resolved(SCHEMA["components"]["schemas"][schema["$ref"].rpartition("/")[2]])
    return schema


def is_text_schema(schema):
    schema = resolved(schema)
    return schema.get("type") == "string" or any(is_text_schema(s) for s in schema.get("anyOf", []))


def operations():
    for path, methods in SCHEMA["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def query_parameters():
    return [(method, path, p["name"]) for method, path, operation in operations()
            for p in operation.get("parameters", []) if p["in"] == "query"]


def body_text_fields():
    fields = []
    for method, path, operation in operations():
        if "requestBody" in operation:
            body = resolved(operation["requestBody"]["content"]["application/json"]["schema"])
            fields += [(method, path, name) for name, field in body["properties"].items() if is_text_schema(field)]
    return fields


QUERY_PARAMETERS, BODY_TEXT_FIELDS = query_parameters(), body_text_fields()


def test_every_operation_with_a_text_field_has_a_valid_body_here():
    assert {(method, path) for method, path, _ in BODY_TEXT_FIELDS} <= set(VALID_BODIES)


@pytest.fixture
def world(team, member, key):
    """A key's client, and the objects the paths name: an image in a gallery that is shared."""
    asset = Asset.from_bytes(png(), team=team, role="input", created_by=member)
    asset.save()
    gallery = Gallery.objects.create(team=team, title="Picks", created_by=member)
    gallery.add(asset, member)
    link, _ = ShareLink.create(gallery, member)
    ids = {"code": str(gallery.code), "asset": str(asset.code), "link": str(link.code)}
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key,
                    raise_request_exception=False)
    client.get("/api/wallet")  # the key's first use is noted now, not during the examples
    return client, ids


def filled(template, ids):
    return template.format(**ids) if isinstance(template, str) else template


EXAMPLES = hypothesis_settings(max_examples=8, deadline=None, derandomize=True, database=None,
                               suppress_health_check=[HealthCheck.function_scoped_fixture])


def for_each(cases):
    """The test, for each (method, path, name) case, with examples of text that is not."""
    def decorate(test):
        examples = EXAMPLES(given(value=NOT_TEXT)(test))
        return pytest.mark.parametrize("method, path, name", cases, ids=[" ".join(case) for case in cases])(examples)
    return decorate


@for_each(QUERY_PARAMETERS)
def test_a_query_parameter_of_the_native_api_that_is_not_text_is_refused(world, method, path, name, value):
    client, ids = world
    before = database_state()
    query = f"{quote(name)}={quote(value.encode('utf-8', 'surrogatepass'))}"
    response = getattr(client, method)(f"{filled(path, ids)}?{query}")
    assert 400 <= response.status_code < 500 and set(response.json()) == NATIVE_SHAPE, response.content
    assert database_state() == before


@for_each(BODY_TEXT_FIELDS)
def test_a_text_field_of_the_native_api_that_is_not_text_is_refused(world, method, path, name, value):
    client, ids = world
    before = database_state()
    base = next((b for b in VALID_BODIES[method, path] if name in b), VALID_BODIES[method, path][0])
    body = {field: filled(v, ids) for field, v in base.items()} | {name: value}
    response = getattr(client, method)(filled(path, ids), json.dumps(body), content_type="application/json")
    assert 400 <= response.status_code < 500 and set(response.json()) == NATIVE_SHAPE, response.content
    assert name in [detail["field"] for detail in response.json()["details"]], response.content
    assert database_state() == before


@for_each([("post", path, name) for path, (_, names) in GATEWAY_BODIES.items() for name in names])
def test_a_text_field_of_the_gateway_api_that_is_not_text_is_refused(world, method, path, name, value):
    client, _ = world
    before = database_state()
    body = GATEWAY_BODIES[path][0] | {name: value}
    response = getattr(client, method)(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and set(response.json()) == GATEWAY_SHAPE, response.content
    assert name in response.json()["message"]
    assert database_state() == before
