"""The native API against its own OpenAPI schema, with schemathesis: for every operation,
generated requests (valid and invalid) sent over real HTTP to a live studio must never
get a 5xx, and every answer must match the schema (status code, content type, body).

Path parameters are pointed at real objects of the key's team, so the generated bodies
and queries reach the handlers instead of stopping at a 404.
"""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.api.models import APIKey
from studio.api.native import api
from studio.billing import money
from studio.gallery.models import Gallery, ShareLink
from studio.library.models import Asset

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def api_world(team, owner, membership, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    money.top_up(team, 100_000_000, actor=owner, reason="schemathesis", key="schemathesis")
    job = start_fibo(membership, {"prompt": "x", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job)
    asset.save()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="r-schema")
    apply_status(job.pk, "COMPLETED")
    gallery = Gallery.objects.create(team=team, title="Picks", created_by=owner)
    gallery.add(asset, owner)
    link, _ = ShareLink.create(gallery, owner)
    _, raw = APIKey.issue(team, owner, "schemathesis")
    return {"key": raw, "job": str(job.code), "asset": str(asset.code), "gallery": str(gallery.code),
            "link": str(link.code)}


# The schema the studio serves at /api/openapi.json, read from the same NinjaAPI.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema())


def real_ids(path, world):
    """The world's object for each path parameter of `path`."""
    ids = {"asset": world["asset"], "link": world["link"]}
    if path.startswith("/api/jobs/"):
        ids["code"] = world["job"]
    elif path.startswith("/api/library/"):
        ids["code"] = world["asset"]
    elif path.startswith("/api/galleries/"):
        ids["code"] = world["gallery"]
    return ids


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, api_world, live_server):
    # Only the parts schemathesis generated as valid are completed: a case meant to be
    # invalid in its path or headers (say, no key) must stay invalid and be refused.
    meta = case.meta
    if case.path_parameters and not (meta and meta.is_negative_at(ParameterLocation.PATH)):
        ids = real_ids(case.path, api_world)
        case.path_parameters = {name: ids.get(name, value) for name, value in case.path_parameters.items()}
    headers = {}
    if not (meta and meta.is_negative_at(ParameterLocation.HEADER)):
        headers["Authorization"] = f"Bearer {api_world['key']}"
    # Every check but "schema-valid data is accepted": a valid shape can still break a
    # rule of the domain (an expiry in the past, a wallet that is short, a blank title).
    case.call_and_validate(base_url=live_server.url, headers=headers, excluded_checks=[positive_data_acceptance])


def test_the_schema_checked_is_the_one_served(client):
    served = client.get("/api/openapi.json", HTTP_HOST="127.0.0.1").json()
    assert served == json.loads(json.dumps(api.get_openapi_schema()))
