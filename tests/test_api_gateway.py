"""The studio's gateway-compatible API: the seed's examples work against the studio by
changing only the base URL and the key; the wallet pays, caps apply, results land in the
library."""

import json
import subprocess
import time

import httpx
import pytest
from django.test import Client

from devtools.emulator.images import render_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership
from studio.api.models import APIKey
from studio.billing.models import Wallet
from studio.library.models import Asset

FIBO_PATH = "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"
RMBG_PATH = "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"
SEED_PROMPT = ("A magnificent hot air balloon festival at sunrise, dozens of colorful balloons floating over a "
               "misty valley with rolling hills")


@pytest.fixture
def key(team, member):
    return APIKey.issue(team, member, "script")[1]


def post(path, body, key=None, raw=None):
    headers = {"HTTP_CACHE_CONTROL": "no-cache"}
    if key is not None:
        headers["HTTP_OCP_APIM_SUBSCRIPTION_KEY"] = key
    return Client(HTTP_HOST="127.0.0.1").post(path, raw if raw is not None else json.dumps(body),
                                              content_type="application/json", **headers)


def status(request_id, key):
    return Client(HTTP_HOST="127.0.0.1").get(f"/v2/requests/status/{request_id}", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)


def test_the_seeds_python_example_works_against_the_studio(live_server, key, team, member, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    url = f"{live_server.url}{FIBO_PATH}"
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache", "Ocp-Apim-Subscription-Key": key}
    response = httpx.post(url, json={"prompt": SEED_PROMPT}, headers=headers)
    body = response.json()
    assert response.status_code == 202 and body["status"] == "QUEUED"
    assert body["request_id"].startswith("bria-fibo-bbq-preview_")
    assert body["polling_url"] == f"{live_server.url}/v2/requests/status/{body['request_id']}"
    job = Job.objects.get()
    assert (job.created_by, job.team, job.params["prompt"]) == (member, team, SEED_PROMPT)
    assert Wallet.objects.get(team=team).held == 40_000


def test_the_seeds_curl_example_works_against_the_studio(live_server, key):
    result = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{live_server.url}{RMBG_PATH}", "-H", "Content-Type: application/json",
         "-H", "Cache-Control: no-cache", "-H", f"Ocp-Apim-Subscription-Key: {key}",
         "--data-raw", '{"image_url": "https://storage.googleapis.com/generativeai-downloads/images/cat.jpg"}'],
        capture_output=True, text=True, timeout=30)
    body = json.loads(result.stdout)
    assert body["status"] == "QUEUED" and body["request_id"].startswith("bria-rmbg-2-0-682_")
    assert Job.objects.get().params == {"image_url": "https://storage.googleapis.com/generativeai-downloads/images/cat.jpg"}


@pytest.mark.parametrize("given", [None, "", "wrong", "bria_wrong"])
def test_a_missing_or_wrong_key_is_401_in_the_seeds_shape(db, given):
    response = post(FIBO_PATH, {"prompt": "x"}, key=given)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized",
                               "message": "Access denied due to missing or invalid subscription key."}
    assert not Job.objects.exists()


def test_a_revoked_key_is_401(team, member, owner):
    api_key, raw = APIKey.issue(team, member, "old")
    api_key.revoke(owner)
    assert post(FIBO_PATH, {"prompt": "x"}, key=raw).status_code == 401


@pytest.mark.parametrize("body, message", [
    ({}, "prompt is required"),
    ({"prompt": ""}, "prompt must not be empty"),
    ({"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio must be one of"),
    ({"prompt": "x", "seed": "12"}, "seed must be an integer"),
    ({"prompt": "x", "steps_num": 0}, "steps_num must be between 1 and 100"),
    ({"prompt": "x", "guidance_scale": 4.99}, "guidance_scale must be between 5 and 10"),
    ({"prompt": "x", "guidance_scale": 10.01}, "guidance_scale must be between 5 and 10"),
    ({"prompt": "x", "colour": "red"}, "Unknown field"),
])
def test_the_gateways_validation_answers_400_and_creates_nothing(key, body, message):
    response = post(FIBO_PATH, body, key=key)
    assert response.status_code == 400 and response.json()["error"] == "Bad Request"
    assert message in response.json()["message"]
    assert not Job.objects.exists()


def test_a_body_that_is_not_json_is_400(key):
    assert post(FIBO_PATH, None, key=key, raw="prompt=x").status_code == 400


@pytest.mark.parametrize("guidance", [5, 10, 7.5])
def test_the_bounds_themselves_are_accepted(key, guidance):
    assert post(FIBO_PATH, {"prompt": "x", "guidance_scale": guidance, "seed": 5555, "aspect_ratio": "16:9",
                            "steps_num": 50}, key=key).status_code == 202


def test_an_empty_wallet_is_402_with_the_seeds_body(outsider):
    _, raw = APIKey.issue(outsider.memberships.get().team, outsider, "poor")
    response = post(FIBO_PATH, {"prompt": "x"}, key=raw)
    assert response.status_code == 402
    assert response.json() == {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
    assert not Job.objects.exists()


def test_a_viewers_key_runs_nothing(team, viewer):
    _, raw = APIKey.issue(team, viewer, "viewer")
    response = post(FIBO_PATH, {"prompt": "x"}, key=raw)
    assert response.status_code == 403 and not Job.objects.exists()


def test_the_members_cap_applies(team, member, key):
    Membership.objects.filter(team=team, user=member).update(monthly_cap=40_000)
    assert post(FIBO_PATH, {"prompt": "x"}, key=key).status_code == 202
    response = post(FIBO_PATH, {"prompt": "x"}, key=key)
    assert response.status_code == 403 and "monthly spend cap" in response.json()["message"]


def test_too_many_requests_is_429_with_retry_after(key, settings, rate_clock):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    assert [status("bria-fibo-bbq-preview_x", key).status_code for _ in range(2)] == [404, 404]
    response = status("bria-fibo-bbq-preview_x", key)
    assert response.status_code == 429 and response["Retry-After"] == "30"  # the minute's rest (rate_clock)


def test_status_follows_the_job_in_the_seeds_shape(key, team, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1"
    request_id = post(FIBO_PATH, {"prompt": "x", "seed": 1}, key=key).json()["request_id"]
    body = status(request_id, key).json()
    assert body == {**body, "request_id": request_id, "status": "QUEUED", "model_id": "bria-fibo-bbq-preview",
                    "error": None, "output": None, "completed_at": None}
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="gw-1")
    apply_status(job.pk, "COMPLETED")
    assert status(request_id, key).json()["status"] == "PROCESSING", "COMPLETED once the image is stored"
    Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job).save()
    Job.objects.filter(pk=job.pk).update(outputs_fetched=True)
    body = status(request_id, key).json()
    assert body["status"] == "COMPLETED" and body["output"]["media_type"] == "image/png"
    [media_url] = body["output"]["media_url"]
    image = Client(HTTP_HOST="127.0.0.1").get(media_url.removeprefix("http://127.0.0.1"))
    assert image.status_code == 200 and b"".join(image.streaming_content)[:4] == b"\x89PNG"
    assert body["completed_at"].endswith("Z")


def test_a_failed_job_reports_its_error(key):
    request_id = post(FIBO_PATH, {"prompt": "x"}, key=key).json()["request_id"]
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="gw-2")
    apply_status(job.pk, "FAILED", error="Generation failed")
    body = status(request_id, key).json()
    assert (body["status"], body["error"], body["output"]) == ("FAILED", "Generation failed", None)


@pytest.mark.parametrize("request_id", ["bria-fibo-bbq-preview_00000000-0000-0000-0000-000000000000", "nonsense",
                                        "bria-fibo-bbq-preview_not-a-uuid", "other_model_x"])
def test_an_unknown_request_id_is_404(key, request_id):
    assert status(request_id, key).status_code == 404


def test_another_teams_job_is_404(key, outsider):
    request_id = post(FIBO_PATH, {"prompt": "x"}, key=key).json()["request_id"]
    _, other_key = APIKey.issue(outsider.memberships.get().team, outsider, "other")
    assert status(request_id, other_key).status_code == 404


def test_only_post_submits(key):
    response = Client(HTTP_HOST="127.0.0.1").get(FIBO_PATH, HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)
    assert response.status_code == 405


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_seeds_typical_workflow_end_to_end(live_server, worker, emulator, team, member):
    """Submit, poll the studio's status endpoint, download from media_url — with a real
    worker and the emulator behind the studio."""
    _, raw = APIKey.issue(team, member, "script")
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache", "Ocp-Apim-Subscription-Key": raw}
    submitted = httpx.post(f"{live_server.url}{FIBO_PATH}", json={"prompt": SEED_PROMPT, "seed": 5555},
                           headers=headers).json()
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        body = httpx.get(submitted["polling_url"], headers={"Ocp-Apim-Subscription-Key": raw}).json()
        if body["status"] in ("COMPLETED", "FAILED", "ERROR"):
            break
        time.sleep(0.2)
    assert body["status"] == "COMPLETED", body
    image = httpx.get(body["output"]["media_url"][0])
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert Wallet.objects.get(team=team).balance == 960_000


class Receiver:
    """A client's webhook endpoint: a real HTTP server that records what it is sent."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def submit_with_callback(key, url, mode="terminal"):
    return Client(HTTP_HOST="127.0.0.1").post(FIBO_PATH, json.dumps({"prompt": "x"}), content_type="application/json",
                                              HTTP_OCP_APIM_SUBSCRIPTION_KEY=key, HTTP_X_WEBHOOK_URL=url,
                                              HTTP_X_WEBHOOK_MODE=mode)


def test_the_client_is_called_back_at_the_terminal_status(key, receiver, settings):
    from studio.api.tasks import deliver_callback

    settings.API_ALLOW_HTTP_CALLBACKS = True
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True  # the receiver listens on loopback here
    request_id = submit_with_callback(key, receiver.url).json()["request_id"]
    job = Job.objects.get()
    assert (job.client_webhook_url, job.client_webhook_mode) == (receiver.url, "terminal")
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="cb-1")
    apply_status(job.pk, "PROCESSING")
    apply_status(job.pk, "ERROR", error="boom")
    assert deliver_callback(job.pk, "ERROR") == "delivered"
    assert receiver.received == [{**receiver.received[0], "request_id": request_id, "status": "ERROR", "error": "boom"}]


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9/hook", "points at a private or local address"),
    ("http://[::1]/hook", "points at a private or local address"),
    ("http://169.254.169.254/latest/meta-data/", "points at a private or local address"),
    ("http://10.0.0.5/hook", "points at a private or local address"),
    ("http://localhost/hook", "points at a private or local address"),
    ("http://hooks.invalid/hook", "names a host, 'hooks.invalid', that could not be found"),
    ("http://2130706433/hook", "must name its host plainly"),
    ("ftp://example.com/hook", "must be an HTTPS or HTTP URL"),
    ("http://user:pw@example.com/hook", "must not carry a user name or password"),
    ("https://example.com/" + "x" * 2000, "must be at most 2000 characters"),
])
def test_a_callback_the_studio_could_never_call_is_refused_at_submit(key, team, settings, url, reason):
    settings.API_ALLOW_HTTP_CALLBACKS = True
    response = submit_with_callback(key, url)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "message": response.json()["message"]}
    assert response.json()["message"].startswith("X-Webhook-URL") and reason in response.json()["message"]
    assert not Job.objects.exists() and Wallet.objects.get(team=team).held == 0


def test_a_callback_to_a_public_host_is_taken(key, settings):
    settings.API_ALLOW_HTTP_CALLBACKS = False
    assert submit_with_callback(key, "https://example.com/hook").status_code == 202
    assert Job.objects.get().client_webhook_url == "https://example.com/hook"


def test_a_callback_whose_address_is_private_by_delivery_is_never_sent(key, receiver, settings):
    from studio.api.tasks import deliver_callback

    settings.API_ALLOW_HTTP_CALLBACKS = True
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True  # the receiver's loopback is allowed at submit…
    assert submit_with_callback(key, receiver.url).status_code == 202
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = False  # …and no longer when the callback is due
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="cb-1")
    apply_status(job.pk, "ERROR", error="boom")
    assert deliver_callback(job.pk, "ERROR") == "refused"
    assert receiver.received == []
    assert Job.objects.get().client_callback_owed_since is None, "refused for good: the sweeper does not resend it"


def test_a_plain_http_callback_is_refused_in_production(key, settings):
    settings.API_ALLOW_HTTP_CALLBACKS = False
    response = submit_with_callback(key, "http://client.example/hook")
    assert response.status_code == 400 and "HTTPS" in response.json()["message"]
    assert not Job.objects.exists()


def test_an_unknown_webhook_mode_is_refused(key):
    response = submit_with_callback(key, "https://client.example/hook", mode="always")
    assert response.status_code == 400 and not Job.objects.exists()
