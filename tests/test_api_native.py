"""The native REST API under /api/, as a team's script uses it: a team API key in
`Authorization: Bearer …` acts as one member (their role, their monthly cap); jobs hold
and charge the wallet exactly as the studio pages do; another team's objects are a 404;
every error comes in one JSON shape, `{"error", "message", "details": [{field, message}]}`;
lists are `{"items", "count"}` pages and cost a fixed number of queries however long.

The cast comes from tests/conftest.py: olivia owns acme ($1.00), mark is a member, vera
a viewer, and oscar owns the team `other` (whose wallet is empty).
"""

import datetime
import io
import json
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from jobs.actions import start_fibo
from jobs.contract import fibo_params
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership, Role, Team
from studio.activity.models import Event
from studio.api.models import APIKey
from studio.billing import money
from studio.billing.models import Wallet
from studio.billing.verify import verify
from studio.gallery.models import Gallery, ShareLink
from studio.library.models import Asset, Star
from tests.conftest import login

HOST = "127.0.0.1"
ACME_START = (1_000_000, 0)  # acme's (balance, held) before anything runs: $1.00, nothing held


# Helpers ------------------------------------------------------------------------------

def api_client(user, team):
    """A client carrying a fresh API key of `team` that acts as `user`."""
    _, raw = APIKey.issue(team, user, f"{user.get_username()}'s script")
    return Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(client, url, body=None):
    return client.post(url, json.dumps({} if body is None else body), content_type="application/json")


def put(client, url, body):
    return client.put(url, json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


def error(response, status, code):
    """The response is `status` in the API's error shape with this code; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert body["error"] == code and body["message"], body
    return body


def fields(body):
    return [detail["field"] for detail in body["details"]]


def png(shade=0):
    """A small, real PNG (the library checks it is an image)."""
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (shade % 256, 120, 200)).save(out, "PNG")
    return out.getvalue()


def finished_job(membership, status="COMPLETED", prompt="a lighthouse at dusk", shade=0):
    """A FIBO job started as the studio starts one, then ended with `status`; a COMPLETED
    job gets its output image in the library. Returns (job, output asset or None)."""
    job = start_fibo(membership, fibo_params(prompt, seed=shade))
    asset = None
    if status == "COMPLETED":
        asset = Asset.from_bytes(png(shade), team=membership.team, role="output", job=job)
        asset.save()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"r-{job.code}")
    apply_status(job.pk, status)
    job.refresh_from_db()
    return job, asset


def uploaded(team, user, shade=0):
    """An image uploaded to the library (an RMBG input, with no job of its own)."""
    asset = Asset.from_bytes(png(shade), team=team, role="input", created_by=user)
    asset.save()
    return asset


def wallet_of(team):
    wallet = Wallet.objects.get(team=team)
    return wallet.balance, wallet.held


def assert_nothing_booked(team):
    assert not Job.objects.exists()
    assert wallet_of(team) == ACME_START
    assert verify() == []


def items(response):
    assert response.status_code == 200, response.content
    return response.json()["items"]


def count_queries(client, url):
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


# Fixtures ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.PUBLIC_BASE_URL = f"http://{HOST}"


@pytest.fixture
def as_member(team, member):
    return api_client(member, team)


@pytest.fixture
def as_owner(team, owner):
    return api_client(owner, team)


@pytest.fixture
def as_viewer(team, viewer):
    return api_client(viewer, team)


@pytest.fixture
def other_team(outsider):
    return Team.objects.get(slug="other")


@pytest.fixture
def as_outsider(outsider, other_team):
    return api_client(outsider, other_team)


@pytest.fixture
def gallery(team, member):
    return Gallery.objects.create(team=team, title="Picks", description="Our best", created_by=member)


# Authentication --------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Basic b2xpdmlhOnB3", "Bearer not-a-key",
                                    "Bearer bria_no-such-key-was-ever-issued"])
def test_without_a_valid_key_the_api_answers_401_with_www_authenticate(team, header):
    client = Client(HTTP_HOST=HOST, **({"HTTP_AUTHORIZATION": header} if header else {}))
    response = client.get("/api/jobs")
    error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_is_401(team, member, owner):
    key, raw = APIKey.issue(team, member, "old script")
    key.revoke(owner)
    response = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/wallet")
    error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_key_of_an_archived_team_is_401(team, member):
    client = api_client(member, team)
    Team.objects.filter(pk=team.pk).update(archived_at=timezone.now())
    error(client.get("/api/wallet"), 401, "unauthorized")


def test_a_logged_in_browser_session_is_not_a_key(member):
    error(login(member).get("/api/jobs"), 401, "unauthorized")


def test_using_a_key_records_when_it_was_last_used(team, member):
    key, raw = APIKey.issue(team, member, "script")
    assert key.last_used_at is None
    assert Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/wallet").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None and timezone.now() - key.last_used_at < datetime.timedelta(minutes=1)


def test_a_key_whose_member_has_left_the_team_is_403(team, member, as_member):
    Membership.objects.filter(team=team, user=member).delete()
    error(as_member.get("/api/wallet"), 403, "forbidden")
    error(post(as_member, "/api/jobs/fibo", {"prompt": "x"}), 403, "forbidden")
    assert not Job.objects.exists()


def test_a_key_acts_with_its_members_current_role(team, member, as_member):
    Membership.objects.filter(team=team, user=member).update(role=Role.VIEWER)
    error(post(as_member, "/api/jobs/fibo", {"prompt": "x"}), 403, "forbidden")
    assert_nothing_booked(team)


def test_a_script_posts_without_a_csrf_token(team, member):
    _, raw = APIKey.issue(team, member, "script")
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {raw}", enforce_csrf_checks=True)
    assert post(client, "/api/jobs/fibo", {"prompt": "x"}).status_code == 201


# Rate limit ----------------------------------------------------------------------------

def test_past_the_rate_limit_the_api_answers_429_with_retry_after(settings, as_member, rate_clock):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    assert [as_member.get("/api/wallet").status_code for _ in range(2)] == [200, 200]
    response = as_member.get("/api/wallet")
    error(response, 429, "rate_limited")
    assert response["Retry-After"] == "30"  # the rest of the minute, on the stopped clock


def test_the_rate_limit_counts_each_key_apart(settings, team, member, as_member, rate_clock):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    statuses = [as_member.get("/api/wallet").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api_client(member, team).get("/api/wallet").status_code == 200


# Starting jobs ---------------------------------------------------------------------------

def test_a_fibo_job_holds_its_price_and_shows_everywhere(team, as_member):
    response = post(as_member, "/api/jobs/fibo", {"prompt": "  a red kite over dunes  ", "seed": 7})
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["model"], job["status"], job["price_usd"], job["money"]) == ("fibo", "QUEUED", "0.04", "held")
    assert job["params"] == {"prompt": "a red kite over dunes", "aspect_ratio": "1:1", "steps_num": 30,
                             "guidance_scale": "7.5", "seed": 7}
    assert (job["created_by"], job["retry_of"], job["outputs"], job["completed_at"]) == ("mark", None, [], None)
    assert wallet_of(team) == (1_000_000, 40_000)
    wallet = as_member.get("/api/wallet").json()
    assert (wallet["balance_usd"], wallet["held_usd"], wallet["available_usd"]) == ("1.00", "0.04", "0.96")
    assert [j["id"] for j in items(as_member.get("/api/jobs"))] == [job["id"]]
    [hold] = items(as_member.get("/api/wallet/ledger?kind=hold"))
    assert (hold["job"], hold["amount_usd"], hold["held_change_usd"], hold["member"]) == (job["id"], "0.00", "0.04",
                                                                                          "mark")
    assert verify() == []


@pytest.mark.parametrize("body, field", [
    ({"prompt": "x", "guidance_scale": 4.99}, "guidance_scale"),
    ({"prompt": "x", "guidance_scale": 10.01}, "guidance_scale"),
    ({"prompt": "x", "steps_num": 0}, "steps_num"),
    ({"prompt": "x", "steps_num": 101}, "steps_num"),
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "seed": 2**32}, "seed"),
    ({"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
])
def test_out_of_bounds_input_is_422_naming_the_field_and_books_nothing(team, as_member, body, field):
    details = error(post(as_member, "/api/jobs/fibo", body), 422, "invalid")
    assert fields(details) == [field]
    assert_nothing_booked(team)


@pytest.mark.parametrize("guidance", [5, 10])
def test_the_guidance_bounds_themselves_are_accepted(as_member, guidance):
    response = post(as_member, "/api/jobs/fibo", {"prompt": "x", "guidance_scale": guidance, "steps_num": 100,
                                                  "seed": 4294967295, "aspect_ratio": "9:16"})
    assert response.status_code == 201, response.content


def test_a_guidance_scale_of_10_is_stored_as_10(as_member):
    job = post(as_member, "/api/jobs/fibo", {"prompt": "x", "guidance_scale": 10}).json()
    assert job["params"]["guidance_scale"] == "10"


@pytest.mark.parametrize("raw, content_type", [("{\"prompt\": ", "application/json"), ("prompt=x", "text/plain")])
def test_a_body_that_is_not_json_is_400_and_books_nothing(team, as_member, raw, content_type):
    error(as_member.post("/api/jobs/fibo", raw, content_type=content_type), 400, "bad_request")
    assert_nothing_booked(team)


def test_a_json_body_that_is_not_an_object_is_422(team, as_member):
    error(as_member.post("/api/jobs/fibo", "[1, 2]", content_type="application/json"), 422, "invalid")
    assert_nothing_booked(team)


def test_an_unknown_field_is_refused_not_ignored(team, as_member):
    """A typo ("guidance") must not run, and charge, a job with the default instead."""
    error(post(as_member, "/api/jobs/fibo", {"prompt": "x", "guidance": 9}), 422, "invalid")
    assert_nothing_booked(team)


def test_a_drained_wallet_is_402_and_books_nothing_more(team, membership, as_member):
    for _ in range(25):  # 25 × $0.04 = all of acme's $1.00
        start_fibo(membership, fibo_params("x"))
    body = error(post(as_member, "/api/jobs/fibo", {"prompt": "one more"}), 402, "insufficient_funds")
    assert "$0.04" in body["message"]
    assert Job.objects.count() == 25 and wallet_of(team) == (1_000_000, 1_000_000)
    assert as_member.get("/api/wallet").json()["available_usd"] == "0.00"
    assert verify() == []


def test_an_empty_wallet_is_402(as_outsider):
    error(post(as_outsider, "/api/jobs/rmbg", {"image_url": "https://example.com/a.png"}), 402, "insufficient_funds")
    assert not Job.objects.exists()


def test_a_viewers_key_starts_nothing(team, as_viewer):
    error(post(as_viewer, "/api/jobs/fibo", {"prompt": "x"}), 403, "forbidden")
    error(post(as_viewer, "/api/jobs/rmbg", {"image_url": "https://example.com/a.png"}), 403, "forbidden")
    assert_nothing_booked(team)


def test_a_member_over_their_monthly_cap_is_403_cap_exceeded(team, member, as_member):
    Membership.objects.filter(team=team, user=member).update(monthly_cap=10_000)  # $0.01
    body = error(post(as_member, "/api/jobs/fibo", {"prompt": "x"}), 403, "cap_exceeded")
    assert "cap" in body["message"]
    assert_nothing_booked(team)


def test_rmbg_from_an_image_url(team, as_member):
    response = post(as_member, "/api/jobs/rmbg", {"image_url": "https://example.com/cat.jpg"})
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["model"], job["price_usd"], job["money"]) == ("rmbg", "0.018", "held")
    assert job["params"] == {"image_url": "https://example.com/cat.jpg"}
    assert wallet_of(team) == (1_000_000, 18_000)


def test_rmbg_from_an_image_of_the_library(team, owner, as_member):
    asset = uploaded(team, owner)
    response = post(as_member, "/api/jobs/rmbg", {"asset": str(asset.code)})
    assert response.status_code == 201, response.content
    assert response.json()["params"] == {"source": str(asset.code)}
    assert Job.objects.get().source_asset == asset


def test_rmbg_of_another_teams_image_is_404_and_books_nothing(team, outsider, other_team, as_member):
    theirs = uploaded(other_team, outsider)
    error(post(as_member, "/api/jobs/rmbg", {"asset": str(theirs.code)}), 404, "not_found")
    assert_nothing_booked(team)


@pytest.mark.parametrize("body, field", [
    ({}, "body"),
    ({"image_url": "https://example.com/a.png", "asset": "6f1c5a52-3d0a-4a8e-9d54-3f1b8f7e2a10"}, "body"),
    ({"image_url": "ftp://example.com/a.png"}, "image_url"),
    ({"asset": "not-a-uuid"}, "asset"),
])
def test_rmbg_needs_exactly_one_valid_source(team, as_member, body, field):
    assert fields(error(post(as_member, "/api/jobs/rmbg", body), 422, "invalid")) == [field]
    assert_nothing_booked(team)


# Reading jobs ----------------------------------------------------------------------------

def test_jobs_filter_by_status_model_and_member(team, owner, membership, as_member):
    done, _ = finished_job(membership)
    failed, _ = finished_job(membership, "ERROR")
    by_owner = post(api_client(owner, team), "/api/jobs/rmbg", {"image_url": "https://example.com/a.png"}).json()

    def ids(url):
        return {job["id"] for job in items(as_member.get(url))}

    assert ids("/api/jobs?status=COMPLETED") == {str(done.code)}
    assert ids("/api/jobs?status=ERROR") == {str(failed.code)}
    assert ids("/api/jobs?model=rmbg") == {by_owner["id"]}
    assert ids("/api/jobs?member=mark") == {str(done.code), str(failed.code)}
    assert ids("/api/jobs?member=olivia&model=fibo") == set()
    assert ids("/api/jobs?member=nobody") == set()


def test_jobs_filter_by_creation_time(membership, as_member):
    old, _ = finished_job(membership)
    new, _ = finished_job(membership, shade=1)
    Job.objects.filter(pk=old.pk).update(created_at=datetime.datetime(2025, 1, 10, tzinfo=datetime.UTC))
    Job.objects.filter(pk=new.pk).update(created_at=datetime.datetime(2025, 3, 10, tzinfo=datetime.UTC))
    after = items(as_member.get("/api/jobs", {"created_after": "2025-02-01T00:00:00+00:00"}))
    before = items(as_member.get("/api/jobs", {"created_before": "2025-02-01T00:00:00Z"}))
    between = items(as_member.get("/api/jobs", {"created_after": "2025-01-10T00:00:00Z",
                                                "created_before": "2025-03-10T00:00:00Z"}))
    assert [j["id"] for j in after] == [str(new.code)]
    assert [j["id"] for j in before] == [str(old.code)]
    assert [j["id"] for j in between] == [str(old.code)], "created_before excludes its own moment"


@pytest.mark.parametrize("query, field", [("status=DONE", "status"), ("created_after=yesterday", "created_after"),
                                          ("limit=0", "limit"), ("limit=101", "limit")])
def test_a_bad_list_query_is_422_naming_the_parameter(as_member, query, field):
    assert fields(error(as_member.get(f"/api/jobs?{query}"), 422, "invalid")) == [field]


def test_jobs_are_paged_newest_first(membership, as_member):
    codes = [str(start_fibo(membership, fibo_params(f"job {n}")).code) for n in range(5)][::-1]
    page = as_member.get("/api/jobs?limit=2&offset=2").json()
    assert page["count"] == 5 and [j["id"] for j in page["items"]] == codes[2:4]
    assert [j["id"] for j in items(as_member.get("/api/jobs?limit=100"))] == codes
    assert items(as_member.get("/api/jobs?offset=5")) == []


def test_another_teams_job_is_404_and_tells_nothing(membership, as_outsider):
    job, _ = finished_job(membership, prompt="acme's secret campaign")
    for response in (as_outsider.get(f"/api/jobs/{job.code}"), post(as_outsider, f"/api/jobs/{job.code}/retry")):
        error(response, 404, "not_found")
        assert b"secret campaign" not in response.content
    assert items(as_outsider.get("/api/jobs")) == []


def test_a_completed_job_lists_its_output_with_a_link_that_downloads_it(membership, as_member):
    job, asset = finished_job(membership)
    body = as_member.get(f"/api/jobs/{job.code}").json()
    assert (body["status"], body["money"], body["completed_at"] is not None) == ("COMPLETED", "charged", True)
    [output] = body["outputs"]
    assert (output["asset"], output["media_type"], output["width"], output["height"]) == (
        str(asset.code), "image/png", 48, 32)
    image = Client(HTTP_HOST=HOST).get(urlsplit(output["url"]).path)  # no key, no login: the link is the permission
    assert image.status_code == 200 and b"".join(image.streaming_content) == png(0)


# Retrying --------------------------------------------------------------------------------

def test_an_error_job_is_retried_once_as_a_new_held_job(team, membership, as_member):
    failed, _ = finished_job(membership, "ERROR")
    assert wallet_of(team) == ACME_START, "ERROR released its hold"
    response = post(as_member, f"/api/jobs/{failed.code}/retry")
    assert response.status_code == 201, response.content
    retry = response.json()
    assert retry["retry_of"] == str(failed.code) and retry["id"] != str(failed.code)
    assert (retry["status"], retry["money"], retry["params"]) == ("QUEUED", "held", failed.params)
    assert wallet_of(team) == (1_000_000, 40_000)
    assert as_member.get(f"/api/jobs/{retry['id']}").json()["retry_of"] == str(failed.code)


def test_a_second_retry_is_409_and_holds_nothing_more(team, membership, as_member):
    failed, _ = finished_job(membership, "ERROR")
    assert post(as_member, f"/api/jobs/{failed.code}/retry").status_code == 201
    error(post(as_member, f"/api/jobs/{failed.code}/retry"), 409, "conflict")
    assert Job.objects.count() == 2 and wallet_of(team) == (1_000_000, 40_000)
    assert len(items(as_member.get("/api/wallet/ledger?kind=hold"))) == 2
    assert verify() == []


def test_only_an_error_job_can_be_retried(membership, as_member):
    done, _ = finished_job(membership)
    error(post(as_member, f"/api/jobs/{done.code}/retry"), 409, "conflict")
    assert Job.objects.count() == 1


def test_a_viewer_cannot_retry(team, membership, as_viewer):
    failed, _ = finished_job(membership, "ERROR")
    error(post(as_viewer, f"/api/jobs/{failed.code}/retry"), 403, "forbidden")
    assert Job.objects.count() == 1 and wallet_of(team) == ACME_START


# Wallet and ledger -----------------------------------------------------------------------

def test_wallet_amounts_are_exact_dollar_strings(settings, team, membership, as_member):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    money.top_up(team, 14_000_000, reason="more credit", key="acme-more")
    Team.objects.filter(pk=team.pk).update(low_balance_threshold=2_500_000)
    finished_job(membership)  # charged $0.04
    post(as_member, "/api/jobs/rmbg", {"image_url": "https://example.com/a.png"})  # holds $0.018
    assert as_member.get("/api/wallet").json() == {
        "team": "acme", "balance_usd": "14.96", "held_usd": "0.018", "available_usd": "14.942",
        "low_balance_threshold_usd": "2.50"}
    capture = items(as_member.get("/api/wallet/ledger?kind=capture"))[0]
    assert (capture["amount_usd"], capture["held_change_usd"], capture["actor"]) == ("-0.04", "-0.04", None)
    topup = items(as_member.get("/api/wallet/ledger?kind=topup"))[0]
    assert (topup["amount_usd"], topup["balance_after_usd"], topup["memo"]) == ("14.00", "15.00", "more credit")


def test_the_ledger_is_newest_first_and_filters_by_kind_and_time(team, membership, as_member):
    finished_job(membership, "ERROR")  # hold, then release
    entries = items(as_member.get("/api/wallet/ledger"))
    assert [e["kind"] for e in entries] == ["release", "hold", "topup"]
    assert [e["kind"] for e in items(as_member.get("/api/wallet/ledger?kind=release"))] == ["release"]
    later = (timezone.now() + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert items(as_member.get("/api/wallet/ledger", {"created_after": later})) == []
    assert len(items(as_member.get("/api/wallet/ledger", {"created_before": later}))) == 3
    error(as_member.get("/api/wallet/ledger?kind=gift"), 422, "invalid")


def test_a_key_sees_only_its_own_teams_wallet(membership, as_outsider):
    finished_job(membership)
    assert as_outsider.get("/api/wallet").json() == {
        "team": "other", "balance_usd": "0.00", "held_usd": "0.00", "available_usd": "0.00",
        "low_balance_threshold_usd": None}
    assert as_outsider.get("/api/wallet/ledger").json() == {"items": [], "count": 0}


# Library ---------------------------------------------------------------------------------

def test_the_library_lists_and_filters_the_teams_images(team, owner, membership, as_member):
    _, kite = finished_job(membership, prompt="a red kite")
    _, dune = finished_job(membership, prompt="quiet dunes", shade=1)
    upload = uploaded(team, owner, shade=2)
    Star.set(dune, membership.user, True)

    def ids(url):
        return [a["id"] for a in items(as_member.get(url))]

    assert ids("/api/library") == [str(upload.code), str(dune.code), str(kite.code)]
    assert ids("/api/library?q=KITE") == [str(kite.code)]
    assert ids("/api/library?model=rmbg") == [str(upload.code)], "uploads are RMBG inputs"
    assert ids("/api/library?starred=true") == [str(dune.code)]
    assert ids("/api/library?member=olivia") == [str(upload.code)]
    assert ids("/api/library?status=COMPLETED&limit=1") == [str(dune.code)]


def test_an_image_in_detail(membership, as_member):
    job, asset = finished_job(membership, prompt="a red kite")
    body = as_member.get(f"/api/library/{asset.code}").json()
    assert {k: body[k] for k in ("id", "role", "media_type", "job", "model", "prompt", "created_by", "starred")} == {
        "id": str(asset.code), "role": "output", "media_type": "image/png", "job": str(job.code), "model": "fibo",
        "prompt": "a red kite", "created_by": "mark", "starred": False}
    assert (body["width"], body["height"], body["size_bytes"]) == (48, 32, len(png(0)))


def test_starring_is_a_state_so_repeating_it_changes_nothing(member, membership, as_member):
    _, asset = finished_job(membership)
    for _ in range(2):
        response = put(as_member, f"/api/library/{asset.code}/star", {"starred": True})
        assert response.status_code == 200 and response.json()["starred"] is True
    assert Star.objects.filter(asset=asset, user=member).count() == 1
    for _ in range(2):
        assert put(as_member, f"/api/library/{asset.code}/star", {"starred": False}).json()["starred"] is False
    assert not Star.objects.exists()
    error(put(as_member, f"/api/library/{asset.code}/star", {}), 422, "invalid")


def test_stars_belong_to_the_keys_member(membership, as_member, as_owner, as_viewer):
    _, asset = finished_job(membership)
    assert put(as_viewer, f"/api/library/{asset.code}/star", {"starred": True}).status_code == 200
    assert as_member.get(f"/api/library/{asset.code}").json()["starred"] is False
    assert items(as_owner.get("/api/library?starred=true")) == []
    assert [a["id"] for a in items(as_viewer.get("/api/library?starred=true"))] == [str(asset.code)]


def test_another_teams_image_is_404(membership, as_outsider):
    _, asset = finished_job(membership, prompt="acme's secret campaign")
    for response in (as_outsider.get(f"/api/library/{asset.code}"),
                     put(as_outsider, f"/api/library/{asset.code}/star", {"starred": True})):
        error(response, 404, "not_found")
        assert b"secret" not in response.content
    assert not Star.objects.exists()
    assert items(as_outsider.get("/api/library")) == []


# Galleries -------------------------------------------------------------------------------

def test_a_gallery_is_made_with_a_title(as_member):
    response = post(as_member, "/api/galleries", {"title": "  Spring picks ", "description": "For the brochure"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["title"], body["description"], body["created_by"], body["items"], body["cover"], body["item_count"]) \
        == ("Spring picks", "For the brochure", "mark", [], None, 0)
    assert str(Gallery.objects.get().code) == body["id"]


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "   "}, {"title": "x" * 121}])
def test_a_gallery_needs_a_real_title(as_member, body):
    assert fields(error(post(as_member, "/api/galleries", body), 422, "invalid")) == ["title"]
    assert not Gallery.objects.exists()


def test_a_gallery_is_edited_by_patch(gallery, as_member):
    body = patch(as_member, f"/api/galleries/{gallery.code}", {"description": "Only the best"}).json()
    assert (body["title"], body["description"]) == ("Picks", "Only the best")
    body = patch(as_member, f"/api/galleries/{gallery.code}", {"title": "Best"}).json()
    assert (body["title"], body["description"]) == ("Best", "Only the best")
    error(patch(as_member, f"/api/galleries/{gallery.code}", {"title": "  "}), 422, "invalid")
    gallery.refresh_from_db()
    assert gallery.title == "Best"


def test_adding_an_image_is_201_then_200_when_already_there(team, owner, gallery, as_member):
    asset = uploaded(team, owner)
    first = post(as_member, f"/api/galleries/{gallery.code}/items", {"asset": str(asset.code)})
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["cover"] == str(asset.code) and body["item_count"] == 1
    [item] = body["items"]
    assert (item["position"], item["added_by"], item["asset"]["id"]) == (0, "mark", str(asset.code))
    again = post(as_member, f"/api/galleries/{gallery.code}/items", {"asset": str(asset.code)})
    assert again.status_code == 200 and len(again.json()["items"]) == 1


def test_another_teams_image_cannot_join_a_gallery(outsider, other_team, gallery, as_member):
    theirs = uploaded(other_team, outsider)
    error(post(as_member, f"/api/galleries/{gallery.code}/items", {"asset": str(theirs.code)}), 404, "not_found")
    assert not gallery.items.exists()


def test_images_move_up_and_down(team, owner, member, gallery, as_member):
    a, b, c = (uploaded(team, owner, shade) for shade in range(3))
    for asset in (a, b, c):
        gallery.add(asset, member)
    names = {str(a.code): "a", str(b.code): "b", str(c.code): "c"}

    def move(asset, direction):
        response = post(as_member, f"/api/galleries/{gallery.code}/items/{asset.code}/move", {"direction": direction})
        assert response.status_code == 200, response.content
        return "".join(names[item["asset"]["id"]] for item in response.json()["items"])

    assert move(c, "up") == "acb"
    assert move(a, "down") == "cab"
    assert move(c, "up") == "cab", "the first stays first"
    assert move(b, "down") == "cab", "the last stays last"
    error(post(as_member, f"/api/galleries/{gallery.code}/items/{a.code}/move", {"direction": "left"}), 422, "invalid")
    elsewhere = uploaded(team, owner, 9)
    error(post(as_member, f"/api/galleries/{gallery.code}/items/{elsewhere.code}/move", {"direction": "up"}), 404,
          "not_found")


def test_the_cover_is_one_of_the_gallerys_images(team, owner, member, gallery, as_member):
    a, b, outside = (uploaded(team, owner, shade) for shade in range(3))
    gallery.add(a, member)
    gallery.add(b, member)
    response = put(as_member, f"/api/galleries/{gallery.code}/cover", {"asset": str(b.code)})
    assert response.status_code == 200 and response.json()["cover"] == str(b.code)
    error(put(as_member, f"/api/galleries/{gallery.code}/cover", {"asset": str(outside.code)}), 404, "not_found")
    gallery.refresh_from_db()
    assert gallery.cover == b


def test_removing_an_image_keeps_it_in_the_library(team, owner, member, gallery, as_member):
    a, b = uploaded(team, owner, 0), uploaded(team, owner, 1)
    gallery.add(a, member)
    gallery.add(b, member)
    response = as_member.delete(f"/api/galleries/{gallery.code}/items/{a.code}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["asset"]["id"] for item in body["items"]] == [str(b.code)]
    assert body["cover"] == str(b.code), "the next image becomes the cover"
    assert as_member.get(f"/api/library/{a.code}").status_code == 200
    error(as_member.delete(f"/api/galleries/{gallery.code}/items/{a.code}"), 404, "not_found")


def test_a_gallery_is_deleted_by_its_maker_or_a_manager_only(team, owner, member, gallery, as_member, as_owner,
                                                              as_viewer):
    theirs = Gallery.objects.create(team=team, title="Olivia's", created_by=owner)
    _, token = ShareLink.create(gallery, member)
    assert Client(HTTP_HOST=HOST).get(f"/s/{token}/").status_code == 200
    error(as_member.delete(f"/api/galleries/{theirs.code}"), 403, "forbidden")
    error(as_viewer.delete(f"/api/galleries/{gallery.code}"), 403, "forbidden")
    assert Gallery.objects.count() == 2
    response = as_member.delete(f"/api/galleries/{gallery.code}")
    assert response.status_code == 204 and response.content == b""
    assert Client(HTTP_HOST=HOST).get(f"/s/{token}/").status_code == 404, "its share links went with it"
    assert as_owner.delete(f"/api/galleries/{theirs.code}").status_code == 204
    assert not Gallery.objects.exists()


def test_a_viewer_reads_galleries_but_changes_nothing(team, owner, member, gallery, as_viewer):
    asset = uploaded(team, owner)
    gallery.add(asset, member)
    assert [g["id"] for g in items(as_viewer.get("/api/galleries"))] == [str(gallery.code)]
    assert as_viewer.get(f"/api/galleries/{gallery.code}").json()["item_count"] == 1
    assert as_viewer.get(f"/api/galleries/{gallery.code}/links").status_code == 200
    url = f"/api/galleries/{gallery.code}"
    for response in (post(as_viewer, "/api/galleries", {"title": "Mine"}),
                     patch(as_viewer, url, {"title": "Renamed"}),
                     post(as_viewer, f"{url}/items", {"asset": str(asset.code)}),
                     post(as_viewer, f"{url}/items/{asset.code}/move", {"direction": "up"}),
                     put(as_viewer, f"{url}/cover", {"asset": str(asset.code)}),
                     as_viewer.delete(f"{url}/items/{asset.code}"),
                     post(as_viewer, f"{url}/links", {})):
        error(response, 403, "forbidden")
    gallery.refresh_from_db()
    assert (Gallery.objects.count(), gallery.title, gallery.items.count(), ShareLink.objects.count()) == (
        1, "Picks", 1, 0)


def test_another_teams_gallery_is_404(gallery, as_outsider):
    url = f"/api/galleries/{gallery.code}"
    for response in (as_outsider.get(url), patch(as_outsider, url, {"title": "Mine"}), as_outsider.delete(url),
                     as_outsider.get(f"{url}/links"), post(as_outsider, f"{url}/links", {})):
        error(response, 404, "not_found")
        assert b"Picks" not in response.content
    assert items(as_outsider.get("/api/galleries")) == []
    assert Gallery.objects.get().title == "Picks"


def test_a_share_link_works_until_it_is_revoked(team, owner, member, gallery, as_member):
    gallery.add(uploaded(team, owner), member)
    response = post(as_member, f"/api/galleries/{gallery.code}/links", {"hide_recipe": True})
    assert response.status_code == 201, response.content
    link = response.json()
    assert (link["state"], link["hide_recipe"], link["expires_at"]) == ("active", True, None)
    assert link["created_by"] == "mark"
    share_path = urlsplit(link["url"]).path
    assert link["url"].startswith(f"http://{HOST}/s/")
    assert Client(HTTP_HOST=HOST).get(share_path).status_code == 200
    listed = as_member.get(f"/api/galleries/{gallery.code}/links").json()
    assert [entry["id"] for entry in listed] == [link["id"]] and "url" not in listed[0], "the url is shown once"
    revoked = as_member.delete(f"/api/galleries/{gallery.code}/links/{link['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    assert Client(HTTP_HOST=HOST).get(share_path).status_code == 404


def test_sharing_and_revoking_are_recorded_once(team, member, gallery, as_member):
    link = post(as_member, f"/api/galleries/{gallery.code}/links", {}).json()
    for _ in range(2):
        assert as_member.delete(f"/api/galleries/{gallery.code}/links/{link['id']}").status_code == 200
    shared = Event.objects.filter(team=team, verb=Event.Verb.SHARED)
    revoked = Event.objects.filter(team=team, verb=Event.Verb.SHARE_REVOKED)
    assert [(e.actor, e.data["link"]) for e in shared] == [(member, link["id"])]
    assert [(e.actor, e.data["link"]) for e in revoked] == [(member, link["id"])]


def test_a_share_link_can_expire_in_days(gallery, as_member):
    link = post(as_member, f"/api/galleries/{gallery.code}/links", {"expires_in_days": 7}).json()
    expires = datetime.datetime.fromisoformat(link["expires_at"])
    assert abs(expires - (timezone.now() + datetime.timedelta(days=7))) < datetime.timedelta(minutes=1)
    soon = (timezone.now() + datetime.timedelta(hours=2)).isoformat()
    response = post(as_member, f"/api/galleries/{gallery.code}/links", {"expires_at": soon})
    assert response.status_code == 201 and response.json()["state"] == "active"


@pytest.mark.parametrize("body, field", [
    ({"expires_at": "2020-01-01T00:00:00Z"}, "body"),
    ({"expires_at": "2099-01-01T00:00:00Z", "expires_in_days": 3}, "body"),
    ({"expires_in_days": 0}, "expires_in_days"),
    ({"expires_in_days": 366}, "expires_in_days"),
])
def test_a_share_links_expiry_must_be_future_and_given_once(team, gallery, as_member, body, field):
    assert fields(error(post(as_member, f"/api/galleries/{gallery.code}/links", body), 422, "invalid")) == [field]
    assert not ShareLink.objects.exists()
    assert not Event.objects.filter(team=team, verb=Event.Verb.SHARED).exists()


# The API as a whole ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/nothing/here", "/api/jobs/not-a-uuid",
                                  "/api/galleries/00000000-0000-0000-0000-000000000000/links"])
def test_an_unknown_path_or_object_is_404_in_the_error_shape(as_member, path):
    error(as_member.get(path), 404, "not_found")


def test_the_api_root_is_404_in_the_error_shape(as_member):
    error(as_member.get("/api/"), 404, "not_found")


@pytest.mark.parametrize("method, path, allowed", [("delete", "/api/jobs", "GET"), ("get", "/api/jobs/fibo", "POST")])
def test_a_wrong_method_is_405(as_member, method, path, allowed):
    response = getattr(as_member, method)(path)
    assert response.status_code == 405 and response["Allow"] == allowed


def test_a_wrong_method_is_405_in_the_error_shape(as_member):
    response = as_member.delete("/api/jobs")
    assert response.status_code == 405 and response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"error", "message", "details"}


def test_the_docs_page_needs_no_other_host(db):
    response = Client(HTTP_HOST=HOST).get("/api/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Bria Studio API" in html and "/api/openapi.json" in html
    hosts = {urlsplit(url).hostname for url in re.findall(r"https?://[^\s\"'<>)]+", html)}
    assert hosts <= {HOST}, f"the docs page loads from {hosts}"
    for asset in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert finders.find(asset), f"{asset} is not among the studio's static files"


def test_the_openapi_schema_lists_every_endpoint(db):
    schema = Client(HTTP_HOST=HOST).get("/api/openapi.json").json()
    operations = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    assert operations >= {
        ("/api/jobs", "get"), ("/api/jobs/{code}", "get"), ("/api/jobs/fibo", "post"), ("/api/jobs/rmbg", "post"),
        ("/api/jobs/{code}/retry", "post"), ("/api/wallet", "get"), ("/api/wallet/ledger", "get"),
        ("/api/library", "get"), ("/api/library/{code}", "get"), ("/api/library/{code}/star", "put"),
        ("/api/galleries", "get"), ("/api/galleries", "post"), ("/api/galleries/{code}", "get"),
        ("/api/galleries/{code}", "patch"), ("/api/galleries/{code}", "delete"),
        ("/api/galleries/{code}/items", "post"), ("/api/galleries/{code}/items/{asset}", "delete"),
        ("/api/galleries/{code}/items/{asset}/move", "post"), ("/api/galleries/{code}/cover", "put"),
        ("/api/galleries/{code}/links", "get"), ("/api/galleries/{code}/links", "post"),
        ("/api/galleries/{code}/links/{link}", "delete"),
    }
    assert schema["components"]["securitySchemes"]["TeamKey"]["scheme"] == "bearer"


# Lists cost a fixed number of queries ----------------------------------------------------

def test_listing_jobs_does_not_query_per_job(team, membership, as_member, django_assert_max_num_queries):
    for shade in range(2):
        finished_job(membership, shade=shade)
    failed, _ = finished_job(membership, "ERROR")
    post(as_member, f"/api/jobs/{failed.code}/retry")
    few = count_queries(as_member, "/api/jobs")
    for shade in range(2, 10):
        finished_job(membership, shade=shade)
    with django_assert_max_num_queries(few):
        page = as_member.get("/api/jobs").json()
    assert page["count"] == 12 and sum(len(job["outputs"]) for job in page["items"]) == 10


def test_listing_the_library_does_not_query_per_image(team, owner, membership, as_member,
                                                      django_assert_max_num_queries):
    def add(shade):
        _, asset = finished_job(membership, shade=shade)
        Star.set(asset, membership.user, shade % 2 == 0)
        uploaded(team, owner, shade)

    add(0)
    few = count_queries(as_member, "/api/library")
    for shade in range(1, 5):
        add(shade)
    with django_assert_max_num_queries(few):
        assert len(items(as_member.get("/api/library"))) == 10


def test_listing_galleries_does_not_query_per_gallery(team, owner, member, as_member, django_assert_max_num_queries):
    def add(n):
        gallery = Gallery.objects.create(team=team, title=f"G{n}", created_by=member if n % 2 else owner)
        gallery.add(uploaded(team, owner, n), member)

    for n in range(2):
        add(n)
    few = count_queries(as_member, "/api/galleries")
    for n in range(2, 10):
        add(n)
    with django_assert_max_num_queries(few):
        listed = items(as_member.get("/api/galleries"))
    assert len(listed) == 10 and all(g["item_count"] == 1 and g["cover"] for g in listed)


def test_a_gallerys_items_do_not_query_per_item(team, owner, member, membership, gallery, as_member,
                                                django_assert_max_num_queries):
    def add(shade):
        _, asset = finished_job(membership, shade=shade)
        gallery.add(asset, member)

    for shade in range(2):
        add(shade)
    few = count_queries(as_member, f"/api/galleries/{gallery.code}")
    for shade in range(2, 10):
        add(shade)
    with django_assert_max_num_queries(few):
        body = as_member.get(f"/api/galleries/{gallery.code}").json()
    assert [item["position"] for item in body["items"]] == list(range(10))
    assert all(item["asset"]["prompt"] == "a lighthouse at dusk" for item in body["items"])


def test_the_ledger_does_not_query_per_entry(team, membership, as_member, django_assert_max_num_queries):
    finished_job(membership)
    few = count_queries(as_member, "/api/wallet/ledger")
    for shade in range(1, 6):
        finished_job(membership, "ERROR" if shade % 2 else "COMPLETED", shade=shade)
    with django_assert_max_num_queries(few):
        entries = items(as_member.get("/api/wallet/ledger"))
    assert len(entries) == 13 and all(e["member"] == "mark" for e in entries if e["job"])


@pytest.mark.parametrize("moment", ["2026-01-01T00:00:00+23:48", "2026-01-01T00:00:00-17:17", "2026-01-01"])
def test_any_iso_offset_is_read_as_utc(as_member, moment):
    # ISO 8601 allows offsets PostgreSQL does not store; the API works in UTC.
    assert as_member.get("/api/jobs", {"created_before": moment}).status_code == 200


def test_a_date_past_the_calendar_is_422(as_member):
    response = as_member.get("/api/jobs", {"created_before": "9999-12-31T23:00:00-23:00"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "created_before"
