"""The Pixazo gateway emulator, exercised over real HTTP exactly as the studio's client uses it."""

import io
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from PIL import Image

from devtools.emulator.images import SIZES, remove_background, render_fibo
from devtools.emulator.server import EmulatorServer
from tests.stack import bound_socket

KEY = "test-key"
FIBO_PATH = "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"
RMBG_PATH = "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"
TERMINAL = {"COMPLETED", "FAILED", "ERROR"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def emulator():
    # No random duplicates by default, so webhook counts are exact.
    server = EmulatorServer(port=0, api_key=KEY, delay=0.3, duplicate_rate=0.0).start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator):
    with httpx.Client(base_url=emulator.url, headers={"Ocp-Apim-Subscription-Key": KEY}, timeout=5) as http:
        yield http


class Receiver:
    """A tiny HTTP server standing in for the studio: records webhooks, serves files."""

    def __init__(self):
        self.calls = []
        self.files = {}  # path -> (content type, bytes)
        self.answers = deque()  # status codes for the next POSTs; 200 when empty
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.calls.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                    status = receiver.answers.popleft() if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                content_type, data = receiver.files.get(self.path, ("text/plain", None))
                self.send_response(200 if data is not None else 404)
                data = data if data is not None else b"missing"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def payloads(self):
        with self.lock:
            return [call["json"] for call in self.calls]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def submit_fibo(client, headers=None, **body):
    body.setdefault("prompt", "a red bicycle leaning on a wall")
    return client.post(FIBO_PATH, json=body, headers=headers or {})


def status_of(client, request_id):
    response = client.get(f"/v2/requests/status/{request_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_terminal(client, request_id, timeout=5.0):
    """Poll until terminal; return (statuses seen in order, final body)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status_of(client, request_id)
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in TERMINAL:
            return seen, body
        time.sleep(0.02)
    raise AssertionError(f"{request_id} not terminal after {timeout}s: {seen}")


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def wait_delivered(emulator, request_id):
    """Until the job is terminal and its callbacks are all sent, retried and recorded:
    from then on nothing more is delivered for it. (The receiver has a payload before the
    emulator records its delivery, so waiting on the receiver is not enough.)"""
    job = emulator.jobs[request_id]
    wait_for(lambda: job.status in TERMINAL and not job.delivering)


def png_bytes(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def refused_port():
    """A loopback port that refuses connections for the whole test."""
    with bound_socket() as sock:
        yield sock.getsockname()[1]


# --------------------------------------------------------------------------- auth and validation


@pytest.mark.parametrize("headers", [{}, {"Ocp-Apim-Subscription-Key": "wrong"}])
def test_missing_or_wrong_key_is_401(emulator, headers):
    for method, path in [("POST", FIBO_PATH), ("POST", RMBG_PATH), ("GET", "/v2/requests/status/x")]:
        response = httpx.request(method, emulator.url + path, json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "error": "Unauthorized",
            "message": "Access denied due to missing or invalid subscription key.",
        }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"guidance_scale": 4.99}, "guidance_scale"),
        ({"guidance_scale": 10.01}, "guidance_scale"),
        ({"guidance_scale": "7"}, "guidance_scale"),
        ({"guidance_scale": True}, "guidance_scale"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"aspect_ratio": 1}, "aspect_ratio"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"seed": "12"}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"steps_num": 0}, "steps_num"),
        ({"steps_num": 101}, "steps_num"),
        ({"steps_num": 30.5}, "steps_num"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"guidance_scale": 7.125}, "guidance_scale"),
        ({"negative_prompt": "blur"}, "negative_prompt"),
    ],
)
def test_fibo_validation_rejects(client, body, field):
    response = submit_fibo(client, **body)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert field in response.json()["message"]


def test_fibo_requires_prompt(client):
    response = client.post(FIBO_PATH, json={"aspect_ratio": "1:1"})
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "message": "prompt is required"}


@pytest.mark.parametrize("raw", [b"not json", b"", b"[1, 2]", b'"prompt"', b'{"prompt": NaN}', b"\xff\xfe"])
def test_non_json_or_non_object_body_is_400(client, raw):
    response = client.post(FIBO_PATH, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"


@pytest.mark.parametrize(
    "body",
    [
        {"guidance_scale": 5},
        {"guidance_scale": 10},
        {"guidance_scale": 7.25, "steps_num": 1, "seed": 0},
        {"steps_num": 100, "seed": 5555, "aspect_ratio": "16:9"},
        {"prompt": "y" * 2000, "aspect_ratio": "9:16", "seed": 2**32 - 1},
        {"steps_num": 30.0, "seed": None},
    ],
)
def test_fibo_accepts_values_at_the_bounds(client, body):
    assert submit_fibo(client, **body).status_code == 202


@pytest.mark.parametrize("body", [{}, {"image_url": "ftp://example.com/a.png"}, {"image_url": "cat.jpg"}, {"image_url": 7}])
def test_rmbg_validation(client, body):
    response = client.post(RMBG_PATH, json=body)
    assert response.status_code == 400
    assert "image_url" in response.json()["message"]


def test_unknown_model_and_unknown_path(client):
    response = client.post("/flux-pro/v1/flux-pro-request", json={"prompt": "x"})
    assert response.status_code == 400
    assert response.json() == {"error": "Model not found", "message": "Model 'flux-pro' not found or is disabled"}

    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_unknown_request_id_is_404(client):
    response = client.get("/v2/requests/status/bria-fibo-bbq-preview_nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "message": "Request 'bria-fibo-bbq-preview_nope' not found"}


# --------------------------------------------------------------------------- lifecycle


def test_submit_answers_202_with_request_id_and_polling_url(client, emulator):
    response = submit_fibo(client)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"request_id", "status", "polling_url"}
    assert body["status"] == "QUEUED"
    uuid7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(f"bria-fibo-bbq-preview_{uuid7}", body["request_id"])
    assert body["polling_url"] == f"{emulator.url}/v2/requests/status/{body['request_id']}"
    assert client.get(body["polling_url"]).json()["request_id"] == body["request_id"]


def test_status_goes_queued_processing_completed(client, emulator):
    # A second in each status: a busy machine's pause between two requests skips none.
    emulator.configure(delay=3.0)
    request_id = submit_fibo(client, aspect_ratio="4:3").json()["request_id"]

    first = status_of(client, request_id)
    assert first["status"] == "QUEUED"
    assert first["output"] is None and first["error"] is None and first["completed_at"] is None

    seen, final = wait_terminal(client, request_id, timeout=10)
    assert seen == ["QUEUED", "PROCESSING", "COMPLETED"]
    assert set(final) == {
        "request_id", "status", "model_id", "error", "output", "created_at", "updated_at", "completed_at"
    }
    assert final["model_id"] == "bria-fibo-bbq-preview" and final["error"] is None
    assert final["output"] == {
        "media_url": [f"{emulator.url}/v1/{request_id}/output.png"],
        "media_type": "image/png",
    }
    for key in ("created_at", "updated_at", "completed_at"):
        assert ISO.match(final[key]), final[key]
    assert final["created_at"] < final["completed_at"]


@pytest.mark.parametrize(
    "marker, status, error",
    [("[fail]", "FAILED", "Generation failed"), ("[error]", "ERROR", "Internal error while processing the request")],
)
def test_prompt_markers_fail_the_job(client, marker, status, error):
    request_id = submit_fibo(client, prompt=f"a lighthouse {marker}").json()["request_id"]
    _, final = wait_terminal(client, request_id)
    assert final["status"] == status
    assert error in final["error"]
    assert final["output"] is None and final["completed_at"]


def test_outcomes_queue_applies_to_the_next_submissions_in_order(client):
    assert client.post("/_emulator/outcomes", json={"next": ["ERROR", "FAILED"]}).status_code == 200
    ids = [submit_fibo(client).json()["request_id"] for _ in range(3)]
    finals = [wait_terminal(client, request_id)[1]["status"] for request_id in ids]
    assert finals == ["ERROR", "FAILED", "COMPLETED"]
    assert client.post("/_emulator/outcomes", json={"next": ["DONE"]}).status_code == 400


def test_complete_forces_a_job_terminal_now(client, emulator):
    emulator.configure(delay=60)
    request_id = submit_fibo(client).json()["request_id"]
    forced = client.post(f"/_emulator/complete/{request_id}", json={"status": "FAILED"})
    assert forced.status_code == 200 and forced.json()["status"] == "FAILED"
    assert status_of(client, request_id)["status"] == "FAILED"
    assert client.post(f"/_emulator/complete/{request_id}").status_code == 409


def test_requests_listing_and_reset(client, emulator):
    emulator.configure(allow_http_webhooks=True, delay=60)  # still in flight when listed
    hook = {"X-Webhook-URL": "http://127.0.0.1:9/hook?token=s3cret", "X-Webhook-Mode": "sync"}
    request_id = submit_fibo(client, headers=hook, seed=7).json()["request_id"]
    listing = client.get("/_emulator/requests").json()
    [entry] = listing["requests"]
    assert entry["request_id"] == request_id and entry["model_id"] == "bria-fibo-bbq-preview"
    assert entry["body"]["seed"] == 7 and entry["headers"] == hook
    assert entry["status"] in {"QUEUED", "PROCESSING"}

    assert client.post("/_emulator/reset").status_code == 200
    assert client.get("/_emulator/requests").json() == {"requests": [], "deliveries": []}
    assert emulator.config.allow_http_webhooks is False
    assert client.get(f"/v2/requests/status/{request_id}").status_code == 404


# --------------------------------------------------------------------------- fault injection


def test_injected_submit_faults_answer_once_each(client):
    faults = {"submit": [402, 429, 500]}
    assert client.post("/_emulator/faults", json=faults).status_code == 200

    first = submit_fibo(client)
    assert first.status_code == 402
    assert first.json() == {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
    second = submit_fibo(client)
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert second.json()["error"] == "Too Many Requests"
    third = submit_fibo(client)
    assert third.status_code == 500 and third.json()["error"] == "Internal Server Error"
    assert submit_fibo(client).status_code == 202


def test_injected_status_and_media_faults(client):
    request_id = submit_fibo(client).json()["request_id"]
    _, final = wait_terminal(client, request_id)
    client.post("/_emulator/faults", json={"status": [500], "media": [500]})
    assert client.get(f"/v2/requests/status/{request_id}").status_code == 500
    assert client.get(f"/v2/requests/status/{request_id}").status_code == 200
    media_url = final["output"]["media_url"][0]
    assert httpx.get(media_url).status_code == 500
    assert httpx.get(media_url).status_code == 200


def test_hang_fault_delays_the_answer_then_clears(client):
    request_id = submit_fibo(client).json()["request_id"]
    client.post("/_emulator/faults", json={"status": ["hang:1"]})
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/v2/requests/status/{request_id}", timeout=0.3)
    started = time.monotonic()
    assert client.get(f"/v2/requests/status/{request_id}", timeout=2).status_code == 200
    assert time.monotonic() - started < 0.5


def test_close_fault_drops_the_connection(client):
    client.post("/_emulator/faults", json={"submit": ["close"]})
    with pytest.raises(httpx.TransportError):
        submit_fibo(client)
    assert submit_fibo(client).status_code == 202


@pytest.mark.parametrize(
    "faults", [{"submit": [200]}, {"submit": ["hang"]}, {"polling": [500]}, {"status": 500}, {"media": [999]}]
)
def test_bad_fault_requests_are_rejected(client, faults):
    assert client.post("/_emulator/faults", json=faults).status_code == 400


# --------------------------------------------------------------------------- webhooks


def hook_headers(receiver, mode=None):
    headers = {"X-Webhook-URL": f"{receiver.url}/hooks/pixazo?token=t0ps3cret"}
    if mode:
        headers["X-Webhook-Mode"] = mode
    return headers


def test_terminal_webhook_posts_the_status_body_once(client, emulator, receiver, capfd):
    emulator.configure(allow_http_webhooks=True)
    request_id = submit_fibo(client, headers=hook_headers(receiver)).json()["request_id"]
    wait_delivered(emulator, request_id)  # nobody polls: the emulator's own clock fires it

    [payload] = receiver.payloads()
    assert payload == status_of(client, request_id)
    assert payload["status"] == "COMPLETED"
    assert receiver.calls[0]["path"] == "/hooks/pixazo?token=t0ps3cret"
    assert receiver.calls[0]["headers"]["Content-Type"] == "application/json"

    [delivery] = client.get("/_emulator/requests").json()["deliveries"]
    assert delivery["status"] == "COMPLETED" and delivery["attempt"] == 1 and delivery["http_status"] == 200

    # The log names method, path and status, but never the webhook token or the key.
    logged = capfd.readouterr().err
    assert f"POST {FIBO_PATH} 202" in logged
    assert "t0ps3cret" not in logged and KEY not in logged


def test_sync_webhook_reports_progress_then_terminal(client, emulator, receiver):
    emulator.configure(allow_http_webhooks=True, delay=0.6)
    request_id = submit_fibo(client, headers=hook_headers(receiver, "sync"), prompt="a kite [fail]").json()["request_id"]
    wait_for(lambda: any(p["status"] in TERMINAL for p in receiver.payloads()))
    statuses = [p["status"] for p in receiver.payloads()]
    assert statuses[0] == "PROCESSING"
    assert statuses[-1] == "FAILED" and statuses.count("FAILED") == 1
    assert all(p["request_id"] == request_id for p in receiver.payloads())
    assert receiver.payloads()[-1]["error"].startswith("Generation failed")


def test_duplicate_rate_one_delivers_every_callback_twice(client, emulator, receiver):
    emulator.configure(allow_http_webhooks=True, duplicate_rate=1.0)
    request_id = submit_fibo(client, headers=hook_headers(receiver)).json()["request_id"]
    wait_delivered(emulator, request_id)
    first, second = receiver.payloads()
    assert first == second and first["status"] == "COMPLETED"
    assert [d["duplicate"] for d in emulator.deliveries()] == [False, True]


def test_failed_webhook_deliveries_are_retried(client, emulator, receiver):
    emulator.configure(allow_http_webhooks=True)
    receiver.answers.extend([500, 503])
    submit_fibo(client, headers=hook_headers(receiver))
    # The emulator records a delivery after the receiver has answered it: wait on the
    # record that is asserted, not on the receiver that sees it first.
    wait_for(lambda: len(emulator.deliveries()) == 3)
    assert [(d["attempt"], d["http_status"]) for d in emulator.deliveries()] == [(1, 500), (2, 503), (3, 200)]
    assert len(receiver.payloads()) == 3


def test_http_webhook_refused_unless_allowed(client, emulator, receiver, refused_port):
    response = submit_fibo(client, headers=hook_headers(receiver))
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "message": "X-Webhook-URL must be an HTTPS URL"}

    assert client.post("/_emulator/config", json={"allow_http_webhooks": True}).status_code == 200
    assert submit_fibo(client, headers=hook_headers(receiver)).status_code == 202
    # https is always accepted at submit time, whether or not it is reachable later.
    assert submit_fibo(client, headers={"X-Webhook-URL": f"https://127.0.0.1:{refused_port}/h"}).status_code == 202


def test_unknown_webhook_mode_is_400(client):
    headers = {"X-Webhook-URL": "https://studio.example/hook", "X-Webhook-Mode": "always"}
    response = submit_fibo(client, headers=headers)
    assert response.status_code == 400 and "X-Webhook-Mode" in response.json()["message"]


# --------------------------------------------------------------------------- outputs


def test_media_url_serves_a_png_sized_for_the_aspect_ratio(client):
    ids = {ratio: submit_fibo(client, aspect_ratio=ratio).json()["request_id"] for ratio in SIZES}
    for ratio, request_id in ids.items():
        _, final = wait_terminal(client, request_id)
        media = httpx.get(final["output"]["media_url"][0])  # public: no key
        assert media.status_code == 200 and media.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(media.content)).size == SIZES[ratio]
    assert httpx.get(f"{client.base_url}/v1/unknown/output.png").status_code == 404


def test_rmbg_end_to_end_makes_the_background_transparent(client, receiver):
    receiver.files["/input.png"] = ("image/png", render_fibo("a teapot", 11, "4:3"))
    response = client.post(RMBG_PATH, json={"image_url": f"{receiver.url}/input.png"})
    assert response.status_code == 202
    assert response.json()["request_id"].startswith("bria-rmbg-2-0-682_")

    _, final = wait_terminal(client, response.json()["request_id"])
    assert final["status"] == "COMPLETED" and final["model_id"] == "bria-rmbg-2-0-682"
    image = Image.open(io.BytesIO(httpx.get(final["output"]["media_url"][0]).content))
    assert image.mode == "RGBA" and image.size == SIZES["4:3"]
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
    assert alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255


@pytest.mark.parametrize(
    "path, reason",
    [(None, "could not download"), ("/missing.png", "HTTP 404"), ("/notes.txt", "not a usable image")],
)
def test_rmbg_with_an_unusable_image_url_fails(client, receiver, refused_port, path, reason):
    receiver.files["/notes.txt"] = ("text/plain", b"hello, not an image")
    url = f"http://127.0.0.1:{refused_port}/cat.png" if path is None else receiver.url + path
    request_id = client.post(RMBG_PATH, json={"image_url": url}).json()["request_id"]
    _, final = wait_terminal(client, request_id)
    assert final["status"] == "FAILED" and final["output"] is None
    assert reason in final["error"]


# --------------------------------------------------------------------------- images


def test_render_fibo_is_deterministic_and_sized():
    first = render_fibo("a lighthouse at dusk", 42, "16:9", 30, 7.5)
    assert first == render_fibo("a lighthouse at dusk", 42, "16:9", 30, 7.5)
    assert first != render_fibo("a lighthouse at dusk", 43, "16:9", 30, 7.5)
    for ratio, size in SIZES.items():
        assert Image.open(io.BytesIO(render_fibo("x", 1, ratio))).size == size


def test_render_fibo_has_a_clean_border_and_a_contrasting_subject():
    pixels = np.asarray(Image.open(io.BytesIO(render_fibo("a green apple", 3, "1:1")))).astype(int)
    corner, centre = pixels[5, 5], pixels[512, 512]
    assert np.abs(corner - centre).sum() > 60
    started = time.perf_counter()
    render_fibo("speed check", 9, "1:1")
    assert time.perf_counter() - started < 0.5  # generous: CI machines vary


def test_remove_background_returns_rgba_with_a_real_mask():
    source = render_fibo("a toy robot", 5, "1:1")
    result = Image.open(io.BytesIO(remove_background(source)))
    alpha = np.asarray(result)[..., 3]
    assert result.mode == "RGBA" and result.size == (1024, 1024)
    assert alpha[0, 0] == 0 and alpha[512, 512] == 255
    assert 0.02 < (alpha == 255).mean() < 0.8


@pytest.mark.parametrize("data", [b"", b"definitely not an image", render_fibo("x", 1, "1:1")[:300]])
def test_remove_background_rejects_garbage(data):
    with pytest.raises(ValueError, match="not a readable image"):
        remove_background(data)


def test_remove_background_refuses_decompression_bombs():
    bomb = png_bytes(Image.new("1", (8000, 6000)))  # 48 Mpx that compress to a few KB
    with pytest.raises(ValueError, match="too large"):
        remove_background(bomb)
